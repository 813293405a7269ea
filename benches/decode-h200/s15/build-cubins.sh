#!/bin/bash
# Cubins of session 15's decode calls (here, on the 2-core machine; NVRTC 12.9 + ptxas from
# scripts/cuda-deps.sh; set MOA_CUDA_CACHE to the wheels' cache first, else it fetches them
# into .cache), two compile streams side by side. Usage: build-cubins.sh OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
cd "$repo"
eval "$(scripts/cuda-deps.sh)"
out=$1
C=target/release/examples/cuda_cubins
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
NEW=4x3eims,4x3ecms,4x3elms,4x3eiclms
(
  $C --out "$out" --dtypes bf16 --variants 4x3ems,$NEW --upstream l:8:$L
  $C --out "$out" --dtypes bf16 --variants 4x3ez,4x3emsx,4x3eiclmsx --upstream l:8:$L --layers 0,8,12,19,25,27,28,29
) > "$out.a.log" 2>&1 &
(
  $C --out "$out" --dtypes f32,f16,bf16 --variants $NEW plans/fixture-mha.toml plans/fixture-gqa.toml
  $C --out "$out" --dtypes bf16 --variants 4x3ems,4x3eiclms --upstream v:32:$V
  $C --out "$out" --dtypes f16 --variants 4x3eiclms --upstream l:8:$L
  $C --out "$out" --dtypes f16 --variants 4x3eiclms --upstream v:32:$V
) > "$out.b.log" 2>&1 &
wait
ls "$out" | wc -l
