#!/bin/bash
# Cubins of session 18's decode call (here, on the 2-core machine; NVRTC 12.9 + ptxas from
# scripts/cuda-deps.sh; set MOA_CUDA_CACHE to the wheels' cache first, else it fetches them
# into .cache), two compile streams side by side. Usage: build-cubins.sh OUT_DIR
#   k  combine unrolled (the lever: every layer of both plans, bf16; f16 and the fixtures
#      for the checks)
#   g  counter merge on cluster lists (Llama-3-8B, bf16, every layer; fixtures f16 / bf16)
#   y, n, x  probes (partials written / combine only / no epilogue) on the probed cells
#   b  wide merge on Llama-3-8B layers 27 and 29 (B = 4, 16k: 17-22 chunks per segment)
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
  $C --out "$out" --dtypes bf16 --variants 4x3eqms,4x3eqmsk --upstream l:8:$L
  $C --out "$out" --dtypes f32,f16,bf16 --variants 4x3eqmsk,4x3eiclmsk plans/fixture-mha.toml plans/fixture-gqa.toml
  $C --out "$out" --dtypes f16,bf16 --variants 4x3eqmsg plans/fixture-gqa.toml
  $C --out "$out" --dtypes bf16 --variants 4x3eqmsx,4x3eqmsn,4x3eqmsy --upstream l:8:$L --layers 1,4,7,19,23,25,27,29
  $C --out "$out" --dtypes bf16 --variants 4x3eqmsb,4x3eqmskb --upstream l:8:$L --layers 27,29
  $C --out "$out" --dtypes f16 --variants 4x3eqmsk --upstream l:8:$L
) > "$out.a.log" 2>&1 &
(
  $C --out "$out" --dtypes bf16 --variants 4x3eiclms,4x3eiclmsk --upstream v:32:$V
  $C --out "$out" --dtypes bf16 --variants 4x3eiclmsx,4x3eiclmsn,4x3eiclmsy --upstream v:32:$V --layers 3,18,22,26
  $C --out "$out" --dtypes bf16 --variants 4x3eqmsg --upstream l:8:$L
  $C --out "$out" --dtypes f16 --variants 4x3eiclmsk --upstream v:32:$V
) > "$out.b.log" 2>&1 &
wait
cat "$out.a.log" "$out.b.log"
ls "$out" | wc -l
