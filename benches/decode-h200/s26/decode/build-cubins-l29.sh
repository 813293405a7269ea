#!/bin/bash
# Cubins of session 26's item 4 (Llama-3-8B B = 16 4k layer 29 beside 25 and 27): the
# probes z (stream only) and y (no merge) of the GQA default, bf16, into the call's folder.
# Usage: build-cubins-l29.sh OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
cd "$repo"
[ -n "${MOA_PTXAS:-}" ] || eval "$(scripts/cuda-deps.sh)"
C=${CUBINS_BIN:-target/release/examples/cuda_cubins}
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
nice $C --out "$1" --dtypes bf16 --variants 4x3eqmskvz,4x3eqmskvy --upstream l:8:$L --layers 25,27,29
