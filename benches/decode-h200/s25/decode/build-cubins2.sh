#!/bin/bash
# Cubins of session 25's decode call 2 (here): `d` with L2 loads (ld.global.cg) instead of
# call 1's volatile loads, bf16 on every Llama-3-8B layer, the fixtures in f32 / f16 / bf16;
# the default's cubins are call 1's (FROM, same keys). (A Vicuna-7B stream was dropped
# for time: call 2 times Llama-3-8B only.)
# Usage: FROM=CALL1_CUBINS build-cubins2.sh OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
cd "$repo"
[ -n "${MOA_PTXAS:-}" ] || eval "$(scripts/cuda-deps.sh)"
out=$1
C="target/release/examples/cuda_cubins ${FROM:+--from $FROM}"
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
(
  $C --out "$out" --dtypes bf16 --variants 4x3eqmskv,4x3eqmskvd --upstream l:8:$L
  $C --out "$out" --dtypes f32,f16,bf16 --variants 4x3eqmskvd plans/fixture-mha.toml plans/fixture-gqa.toml
) > "$out.a.log" 2>&1
tail -5 "$out.a.log"
ls "$out" | wc -l
