#!/bin/bash
# Builds the cubins of s15-prefill's device call (run from the repository root after the
# release build of the examples): bf16 DEF (3x64x1owghvunca, main's default: the same keys
# as main's build) and DEF + `f`, + `l`, + `fl` on every layer of both upstream plans;
# f16 DEF16 (3x64x1owghnc) and DEF16 + `fl`; layer 0 of the dense plans in both forms; the
# fixtures (bf16 and f16, and `t` + `fl` there, so both forms of the query-tile geometry
# run under cuda_check and the sanitizers).
set -e
D=${D:-/work/main/.dev-s15-prefill}
NEW=${NEW:-/tmp/s15p/cubins}
export MOA_CUDA_CACHE=/work/cuda-cache; eval "$(scripts/cuda-deps.sh)"
U="--upstream v:32:$D/plans/vicuna7b.json --upstream l:8:$D/plans/llama3_8b.json"
DN="--upstream d8:8:$D/plans/dense_gqa.json --upstream d32:32:$D/plans/dense_mha.json"
FX="$D/plans/fixture-mha.toml $D/plans/fixture-gqa.toml $D/plans/fixture-gqa-sink160.toml"
C="target/release/examples/cuda_cubins --out $NEW"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunca,3x64x1owghvuncafl,3x64x1owghvunctfl $FX
$C --dtypes f16 --prefill-variants 3x64x1owghnc,3x64x1owghncfl $FX
$C --dtypes bf16 --prefill-variants 3x64x1owghvunca,3x64x1owghvuncafl --layers 0 $DN
$C --dtypes f16 --prefill-variants 3x64x1owghnc,3x64x1owghncfl --layers 0 $DN
echo "done fixtures, dense $(date -u +%T)"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunca,3x64x1owghvuncafl $U
echo "done bf16 DEF, fl $(date -u +%T)"
$C --dtypes bf16 --prefill-variants 3x64x1owghvuncaf,3x64x1owghvuncal $U
echo "done bf16 f, l $(date -u +%T)"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunctfl $U
echo "done bf16 tfl $(date -u +%T)"
$C --dtypes f16 --prefill-variants 3x64x1owghnc,3x64x1owghncfl $U
echo "done f16 $(date -u +%T)"
