#!/bin/bash
# Cubins of session 17's decode call (here, on the 2-core machine; NVRTC 12.9 + ptxas from
# scripts/cuda-deps.sh; set MOA_CUDA_CACHE to the wheels' cache first, else it fetches them
# into .cache), two compile streams side by side. Usage: build-cubins.sh OUT_DIR
#   o  exit arrive first: the cluster merge arrives at its exit barrier before its O stores
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
  $C --out "$out" --dtypes bf16 --variants 4x3eqms,4x3eqmos --upstream l:8:$L
  $C --out "$out" --dtypes f32,f16,bf16 --variants 4x3eqmos,4x3eiclmos plans/fixture-mha.toml plans/fixture-gqa.toml
  $C --out "$out" --dtypes f16 --variants 4x3eqmos --upstream l:8:$L
) > "$out.a.log" 2>&1 &
(
  $C --out "$out" --dtypes bf16 --variants 4x3eiclms,4x3eiclmos --upstream v:32:$V
  $C --out "$out" --dtypes f16 --variants 4x3eiclmos --upstream v:32:$V
) > "$out.b.log" 2>&1 &
wait
ls "$out" | wc -l
# The probes (z: stream only, x: stream + math) on the cells call 1 splits, and 4x3eqmos on
# Llama's B = 16 probe layers is in the list above already.
$C --out "$out" --dtypes bf16 --variants 4x3eqmsz,4x3eqmsx --upstream l:8:$L --layers 4,7,19,23,25,27,29 > "$out.c.log" 2>&1 &
$C --out "$out" --dtypes bf16 --variants 4x3eiclmsz,4x3eiclmsx --upstream v:32:$V --layers 3,18,22,26 > "$out.d.log" 2>&1 &
wait
ls "$out" | wc -l
