#!/bin/bash
# Cubins of session 26's decode call (here, on the shared 2 cores; NVRTC + ptxas from
# /work/cuda-env.sh or scripts/cuda-deps.sh), two compile streams side by side:
#   OUT:       Llama-3-8B 4x3eqmskv (default) and 4x3eqmskvd every layer bf16 (timing,
#              checks), 4x3eqmskvd f16 (checks); the fixtures in f32 / f16 / bf16 with
#              4x3eqmskvd and 4x3eiclmsjd; Vicuna-7B 4x3eiclmsj (default) and 4x3eiclmsjd
#              every layer bf16 (timing, checks), 4x3eiclmsjd f16 (checks)
#   OUT-probe: 4x3eqmskvd with MOA_DECODE_SPEC_PROBE (probe_edit.sh), Llama-3-8B layers
#              PROBE_LAYERS bf16, under the plain source's keys
# Usage: build-cubins.sh OUT_DIR   (then build-cubins-l29.sh OUT_DIR for item 4)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
cd "$repo"
[ -n "${MOA_PTXAS:-}" ] || eval "$(scripts/cuda-deps.sh)"
out=$1
C=${CUBINS_BIN:-target/release/examples/cuda_cubins}
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
PROBE_LAYERS=${PROBE_LAYERS:-0,7,24,29}
(
  nice $C --out "$out" --dtypes bf16 --variants 4x3eqmskv,4x3eqmskvd --upstream l:8:$L
  nice $C --out "$out-probe" --dtypes bf16 --variants 4x3eqmskvd --upstream l:8:$L --layers $PROBE_LAYERS \
    --edit "sh $here/probe_edit.sh"
  nice $C --out "$out" --dtypes f32,f16,bf16 --variants 4x3eqmskvd,4x3eiclmsjd plans/fixture-mha.toml plans/fixture-gqa.toml
  nice $C --out "$out" --dtypes f16 --variants 4x3eqmskvd --upstream l:8:$L
) > "$out.a.log" 2>&1 &
(
  nice $C --out "$out" --dtypes bf16 --variants 4x3eiclmsj,4x3eiclmsjd --upstream v:32:$V
  nice $C --out "$out" --dtypes f16 --variants 4x3eiclmsjd --upstream v:32:$V
) > "$out.b.log" 2>&1 &
wait
cat "$out.a.log" "$out.b.log" | tail -20
ls "$out" | wc -l
