#!/bin/bash
# Builds the cubins of the session-12 prefill call (run from the repository root, after
# the release build of the examples): bf16 BASE (3x64x1owghvunc) and CAND (3x64x1owghvunct)
# on every layer of both upstream plans, the dense plans and the fixtures; f16 2x64x1owgnc,
# 3x64x1owghnc and 3x64x1owghnct on every layer, 2x64x1owgnct on Llama-3-8B and the
# fixtures. cuda_cubins skips cubins already present and copies those of --from folders.
set -e
D=${D:-/work/main/.dev-s12-prefill}
FROM=${FROM:-/tmp/pf/cubins-s11}
export MOA_CUDA_CACHE=/work/cuda-cache; eval "$(scripts/cuda-deps.sh)"
C="target/release/examples/cuda_cubins --out $D/cubins --from $FROM"
U="--upstream v:32:$D/plans/vicuna7b.json --upstream l:8:$D/plans/llama3_8b.json"
L="--upstream l:8:$D/plans/llama3_8b.json"
DN="--upstream d8:8:$D/plans/dense_gqa.json --upstream d32:32:$D/plans/dense_mha.json"
FX="$D/plans/fixture-mha.toml $D/plans/fixture-gqa.toml"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunct $FX
$C --dtypes f16 --prefill-variants 2x64x1owgnct,3x64x1owghnct $FX
echo "done fixtures $(date -u +%T)"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunc,3x64x1owghvunct --layers 0 $DN
$C --dtypes bf16 --prefill-variants 3x64x1owghvunct,3x64x1owghvunc $U
echo "done bf16 $(date -u +%T)"
$C --dtypes f16 --prefill-variants 2x64x1owgnc,3x64x1owghnc,3x64x1owghnct $U
echo "done f16 $(date -u +%T)"
$C --dtypes f16 --prefill-variants 2x64x1owgnct $L
echo "done f16 2x64 t $(date -u +%T)"
