#!/bin/bash
# Builds the cubins of s13-prefill's second call (run from the repository root after the
# release build of the examples at the call's commit): the bf16 default 3x64x1owghvunca
# (`a`) and 3x64x1owghvunc with the pre-pass on about one wave of blocks, every layer of
# both upstream plans, layer 0 of the dense plans, the fixtures (and `t` there). The
# first call's binary (C1, the pre-pass of one block per 64 tokens) reuses that call's
# cubins (/tmp/s13p/cubins), main's (OLD) those of cubins-old.
set -e
D=${D:-/work/main/.dev-s13-prefill}
NEW=${NEW:-/tmp/s13p/cubins2}
export MOA_CUDA_CACHE=/work/cuda-cache; eval "$(scripts/cuda-deps.sh)"
U="--upstream v:32:$D/plans/vicuna7b.json --upstream l:8:$D/plans/llama3_8b.json"
DN="--upstream d8:8:$D/plans/dense_gqa.json --upstream d32:32:$D/plans/dense_mha.json"
FX="$D/plans/fixture-mha.toml $D/plans/fixture-gqa.toml $D/plans/fixture-gqa-sink160.toml"
C="target/release/examples/cuda_cubins --out $NEW"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunca,3x64x1owghvunct $FX
$C --dtypes bf16 --prefill-variants 3x64x1owghvunca --layers 0 $DN
echo "done fixtures, dense $(date -u +%T)"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunca,3x64x1owghvunc $U
echo "done bf16 $(date -u +%T)"
