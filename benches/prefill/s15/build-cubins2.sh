#!/bin/bash
# Builds the cubins of s15-prefill's second call (run from the repository root after the
# release build of the examples at the call's commit): the new defaults with `f`'s length
# rule, bf16 3x64x1owghvuncaf and f16 3x64x1owghncf, on every layer of both upstream plans,
# layer 0 of the dense plans, the fixtures (and the bf16 `t` form there). The former
# defaults (3x64x1owghvunca, 3x64x1owghnc) are the first call's cubins (the same keys:
# checked below on one layer).
set -e
D=${D:-/work/main/.dev-s15-prefill}
NEW=${NEW:-/tmp/s15p/cubins2}
OLD=${OLD:-/tmp/s15p/cubins}
export MOA_CUDA_CACHE=/work/cuda-cache; eval "$(scripts/cuda-deps.sh)"
U="--upstream v:32:$D/plans/vicuna7b.json --upstream l:8:$D/plans/llama3_8b.json"
DN="--upstream d8:8:$D/plans/dense_gqa.json --upstream d32:32:$D/plans/dense_mha.json"
FX="$D/plans/fixture-mha.toml $D/plans/fixture-gqa.toml $D/plans/fixture-gqa-sink160.toml"
C="target/release/examples/cuda_cubins --out $NEW --from $OLD"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunca --layers 0 --upstream l:8:$D/plans/llama3_8b.json | tail -1
$C --dtypes bf16 --prefill-variants 3x64x1owghvuncaf,3x64x1owghvunctf $FX
$C --dtypes f16 --prefill-variants 3x64x1owghncf $FX
$C --dtypes bf16 --prefill-variants 3x64x1owghvuncaf --layers 0 $DN
echo "done fixtures, dense $(date -u +%T)"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunca,3x64x1owghvuncaf $U
echo "done bf16 $(date -u +%T)"
$C --dtypes f16 --prefill-variants 3x64x1owghnc,3x64x1owghncf $U
echo "done f16 $(date -u +%T)"
