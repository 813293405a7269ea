#!/bin/bash
# Cubins of session 16's decode call (here, on the 2-core machine; NVRTC 12.9 + ptxas from
# scripts/cuda-deps.sh; set MOA_CUDA_CACHE to the wheels' cache first, else it fetches them
# into .cache), two compile streams side by side. Usage: build-cubins.sh OUT_DIR
#   q  Q first (Q's loads before the first use of row_pos)
#   p  push merge in clusters (st.async into the merging block, an mbarrier's tx count)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
cd "$repo"
eval "$(scripts/cuda-deps.sh)"
out=$1
C=target/release/examples/cuda_cubins
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
(
  $C --out "$out" --dtypes bf16 --variants 4x3ems,4x3eqms,4x3emps,4x3eqmps --upstream l:8:$L
  $C --out "$out" --dtypes f32,f16,bf16 --variants 4x3eqmps,4x3eqiclmps plans/fixture-mha.toml plans/fixture-gqa.toml
) > "$out.a.log" 2>&1 &
(
  $C --out "$out" --dtypes bf16 --variants 4x3eiclms,4x3eqiclms,4x3eiclmps,4x3eqiclmps --upstream v:32:$V
  $C --out "$out" --dtypes f16 --variants 4x3eqmps --upstream l:8:$L
  $C --out "$out" --dtypes f16 --variants 4x3eqiclmps --upstream v:32:$V
) > "$out.b.log" 2>&1 &
wait
ls "$out" | wc -l
