#!/bin/bash
# Builds the cubins of s12-prefill2's call (run from the repository root after the release
# build of the examples): bf16 BASE (3x64x1owghvunc, copied from session 12's first call
# where its source is unchanged) and CAND (3x64x1owghvunct, `t` with the consumers' loop
# over ring positions) on every layer of both upstream plans, layer 0 of the dense plans,
# the fixtures and fixture-gqa with 160 sink tokens; f16 3x64x1owghnct on the fixtures.
set -e
D=${D:-/work/main/.dev-s12-prefill2}
FROM=${FROM:-/tmp/pf/cubins-s12}
# The carry folder's plans/ holds the session-12 plans plus this folder's 160-sink fixture.
mkdir -p $D/plans && cp "$(dirname "$0")/fixture-gqa-sink160.toml" $D/plans/
export MOA_CUDA_CACHE=/work/cuda-cache; eval "$(scripts/cuda-deps.sh)"
C="target/release/examples/cuda_cubins --out $D/cubins --from $FROM"
U="--upstream v:32:$D/plans/vicuna7b.json --upstream l:8:$D/plans/llama3_8b.json"
DN="--upstream d8:8:$D/plans/dense_gqa.json --upstream d32:32:$D/plans/dense_mha.json"
FX="$D/plans/fixture-mha.toml $D/plans/fixture-gqa.toml $D/plans/fixture-gqa-sink160.toml"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunct $FX
$C --dtypes f16 --prefill-variants 3x64x1owghnct $FX
echo "done fixtures $(date -u +%T)"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunc,3x64x1owghvunct --layers 0 $DN
$C --dtypes bf16 --prefill-variants 3x64x1owghvunct,3x64x1owghvunc $U
echo "done bf16 $(date -u +%T)"
