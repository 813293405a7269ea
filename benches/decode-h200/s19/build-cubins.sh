#!/bin/bash
# Cubins of session 19's decode call (here, on the 2-core machine; NVRTC 12.9 + ptxas from
# scripts/cuda-deps.sh; set MOA_CUDA_CACHE to the wheels' cache first, else it fetches them
# into .cache), two compile streams side by side. Usage: [FROM=OLD_DIR] build-cubins.sh OUT_DIR
# (FROM: cubins of an earlier build, copied where the key matches)
#   4x3eqmsk   the GQA default (A): every Llama-3-8B layer, bf16
#   4x3eqmskh  clusters of up to 16 (B): every Llama-3-8B layer, bf16 and f16 (the check),
#              the fixtures in f32 / f16 / bf16 (the checks and compute-sanitizer)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
cd "$repo"
eval "$(scripts/cuda-deps.sh)"
out=$1
C="target/release/examples/cuda_cubins ${FROM:+--from $FROM}"
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
(
  $C --out "$out" --dtypes bf16 --variants 4x3eqmskh --upstream l:8:$L
  $C --out "$out" --dtypes f32,f16,bf16 --variants 4x3eqmskh plans/fixture-mha.toml plans/fixture-gqa.toml
) > "$out.a.log" 2>&1 &
(
  $C --out "$out" --dtypes bf16 --variants 4x3eqmsk --upstream l:8:$L
  $C --out "$out" --dtypes f16 --variants 4x3eqmskh --upstream l:8:$L
) > "$out.b.log" 2>&1 &
wait
cat "$out.a.log" "$out.b.log"
ls "$out" | wc -l
