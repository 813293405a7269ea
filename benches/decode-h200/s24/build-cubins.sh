#!/bin/bash
# Cubins of session 24's decode call (here, on the 2-core machine; NVRTC + ptxas from
# /work/cuda-env.sh or scripts/cuda-deps.sh), two compile streams side by side. The decode
# template is main's: only the work lists change, so the kernels are the default
# 4x3eqmskv and the opt-in `j` (4x3eqmskvj).
# Usage: [FROM=OLD_DIR] build-cubins.sh OUT_DIR
#   Llama-3-8B: 4x3eqmskv and 4x3eqmskvj, every layer, bf16 (timing, checks) and f16 (checks)
#   the fixtures in f32 / f16 / bf16 with both kernels (checks, compute-sanitizer)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
cd "$repo"
[ -n "${MOA_PTXAS:-}" ] || eval "$(scripts/cuda-deps.sh)"
out=$1
C="target/release/examples/cuda_cubins ${FROM:+--from $FROM}"
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
(
  $C --out "$out" --dtypes bf16 --variants 4x3eqmskv --upstream l:8:$L
  $C --out "$out" --dtypes f16 --variants 4x3eqmskv --upstream l:8:$L
  $C --out "$out" --dtypes f32,f16,bf16 --variants 4x3eqmskv plans/fixture-mha.toml plans/fixture-gqa.toml
) > "$out.a.log" 2>&1 &
(
  $C --out "$out" --dtypes bf16 --variants 4x3eqmskvj --upstream l:8:$L
  $C --out "$out" --dtypes f16 --variants 4x3eqmskvj --upstream l:8:$L
  $C --out "$out" --dtypes f32,f16,bf16 --variants 4x3eqmskvj plans/fixture-mha.toml plans/fixture-gqa.toml
) > "$out.b.log" 2>&1 &
wait
cat "$out.a.log" "$out.b.log" | tail -20
ls "$out" | wc -l
