#!/bin/bash
# Cubins of session 20's decode call (here, on the 2-core machine; NVRTC 12.9 + ptxas from
# scripts/cuda-deps.sh or /work/cuda-env.sh), two compile streams side by side.
# Usage: [FROM=OLD_DIR] build-cubins.sh OUT_DIR   (FROM: cubins of an earlier build, copied
# where the key matches)
#   A  = the defaults: 4x3eqmsk (Llama-3-8B, GQA) and 4x3eiclms (Vicuna-7B, MHA), every layer, bf16
#   B  = half partials `v`: 4x3eqmskv / 4x3eiclmsv, every layer, bf16 and f16 (the checks),
#        the fixtures in f32 / f16 / bf16 (the checks and compute-sanitizer)
#   probes x / n / y (and y with v) of the GQA default on the layers the split looks at
#   4x3eqmskh on Llama layers 1 and 27 (the ncu look at a packed:16 list)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
cd "$repo"
[ -n "${MOA_PTXAS:-}" ] || eval "$(scripts/cuda-deps.sh)"
out=$1
C="target/release/examples/cuda_cubins ${FROM:+--from $FROM}"
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
PL=1,4,7,19,23,24,25,27,29
(
  $C --out "$out" --dtypes f32,f16,bf16 --variants 4x3eqmskv,4x3eiclmsv plans/fixture-mha.toml plans/fixture-gqa.toml
  $C --out "$out" --dtypes bf16 --variants 4x3eqmskv --upstream l:8:$L
  $C --out "$out" --dtypes bf16 --variants 4x3eqmsk --upstream l:8:$L
  $C --out "$out" --dtypes f16 --variants 4x3eqmskv --upstream l:8:$L
  $C --out "$out" --dtypes bf16 --variants 4x3eqmskx,4x3eqmskn --layers $PL --upstream l:8:$L
) > "$out.a.log" 2>&1 &
(
  $C --out "$out" --dtypes bf16 --variants 4x3eiclmsv --upstream v:32:$V
  $C --out "$out" --dtypes bf16 --variants 4x3eiclms --upstream v:32:$V
  $C --out "$out" --dtypes f16 --variants 4x3eiclmsv --upstream v:32:$V
  $C --out "$out" --dtypes bf16 --variants 4x3eqmsky,4x3eqmskvy --layers $PL --upstream l:8:$L
  $C --out "$out" --dtypes bf16 --variants 4x3eqmskh --layers 1,27 --upstream l:8:$L
) > "$out.b.log" 2>&1 &
wait
cat "$out.a.log" "$out.b.log" | tail -20
ls "$out" | wc -l
