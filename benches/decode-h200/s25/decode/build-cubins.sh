#!/bin/bash
# Cubins of session 25's decode call (here, on the 2-core machine; NVRTC + ptxas from
# /work/cuda-env.sh or scripts/cuda-deps.sh), two compile streams side by side:
#   Llama-3-8B: the GQA default 4x3eqmskv and the speculative merge 4x3eqmskvd, every layer,
#     bf16 (timing, checks) and f16 (checks)
#   Vicuna-7B: the MHA default 4x3eiclmsj and 4x3eiclmsjd, every layer, bf16; f16 for `d`
#   the fixtures in f32 / f16 / bf16 with both `d` kernels (checks, compute-sanitizer)
# Usage: [FROM=OLD_DIR] build-cubins.sh OUT_DIR   (FROM: reuse cubins of the same key)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
cd "$repo"
[ -n "${MOA_PTXAS:-}" ] || eval "$(scripts/cuda-deps.sh)"
out=$1
C="target/release/examples/cuda_cubins ${FROM:+--from $FROM}"
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
(
  $C --out "$out" --dtypes bf16 --variants 4x3eqmskv,4x3eqmskvd --upstream l:8:$L
  $C --out "$out" --dtypes f16 --variants 4x3eqmskvd --upstream l:8:$L
  $C --out "$out" --dtypes f32,f16,bf16 --variants 4x3eqmskvd plans/fixture-mha.toml plans/fixture-gqa.toml
) > "$out.a.log" 2>&1 &
(
  $C --out "$out" --dtypes bf16 --variants 4x3eiclmsj,4x3eiclmsjd --upstream v:32:$V
  $C --out "$out" --dtypes f16 --variants 4x3eiclmsjd --upstream v:32:$V
  $C --out "$out" --dtypes f32,f16,bf16 --variants 4x3eiclmsjd plans/fixture-mha.toml plans/fixture-gqa.toml
) > "$out.b.log" 2>&1 &
wait
cat "$out.a.log" "$out.b.log" | tail -20
ls "$out" | wc -l
