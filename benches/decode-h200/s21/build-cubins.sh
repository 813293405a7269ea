#!/bin/bash
# Cubins of session 21's decode call (here, on the 2-core machine; NVRTC 12.9 + ptxas from
# scripts/cuda-deps.sh or /work/cuda-env.sh), two compile streams side by side.
# Usage: [FROM=OLD_DIR] build-cubins.sh OUT_DIR   (FROM: cubins of an earlier build, e.g.
# session 20's, copied where the key matches: the defaults' sources are unchanged)
#   A = the defaults: 4x3eqmskv (Llama-3-8B, GQA) and 4x3eiclms (Vicuna-7B, MHA), every layer, bf16
#   B = the last arrival merges from its registers (`j`): 4x3eqmskvj / 4x3eiclmsj, every
#       layer, bf16 and f16 (the checks), the fixtures in f32 / f16 / bf16 (the checks and
#       compute-sanitizer)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
cd "$repo"
[ -n "${MOA_PTXAS:-}" ] || eval "$(scripts/cuda-deps.sh)"
out=$1
C="target/release/examples/cuda_cubins ${FROM:+--from $FROM}"
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
(
  $C --out "$out" --dtypes bf16 --variants 4x3eqmskv --upstream l:8:$L
  $C --out "$out" --dtypes bf16 --variants 4x3eqmskvj --upstream l:8:$L
  $C --out "$out" --dtypes f16 --variants 4x3eqmskvj --upstream l:8:$L
  $C --out "$out" --dtypes f32,f16,bf16 --variants 4x3eqmskvj plans/fixture-mha.toml plans/fixture-gqa.toml
) > "$out.a.log" 2>&1 &
(
  $C --out "$out" --dtypes bf16 --variants 4x3eiclms --upstream v:32:$V
  $C --out "$out" --dtypes bf16 --variants 4x3eiclmsj --upstream v:32:$V
  $C --out "$out" --dtypes f16 --variants 4x3eiclmsj --upstream v:32:$V
  $C --out "$out" --dtypes f32,f16,bf16 --variants 4x3eiclmsj plans/fixture-mha.toml plans/fixture-gqa.toml
) > "$out.b.log" 2>&1 &
wait
cat "$out.a.log" "$out.b.log" | tail -20
ls "$out" | wc -l
