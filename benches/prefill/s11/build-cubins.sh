#!/bin/bash
# Builds the cubins of the session-11 prefill call (run from the repository root, after
# the release build of the examples): bf16 BASE and CAND on every layer, the single
# letters on the sub layers, f16's three variants on every layer, the dense plans and
# the fixtures. cuda_cubins skips cubins already present (same source).
set -e
D=${D:-/work/main/.dev-s11-prefill}
export MOA_CUDA_CACHE=/work/cuda-cache; eval "$(scripts/cuda-deps.sh)"
C="target/release/examples/cuda_cubins --out $D/cubins"
U="--upstream v:32:$D/plans/vicuna7b.json --upstream l:8:$D/plans/llama3_8b.json"
DN="--upstream d8:8:$D/plans/dense_gqa.json --upstream d32:32:$D/plans/dense_mha.json"
FX="$D/plans/fixture-mha.toml $D/plans/fixture-gqa.toml"
SUB=0,9,13,17,24,27,29,31
# bf16 every layer: BASE, nc, nck (CAND); f16 every layer: the former default, the new one
# (2x64x1owgnck) and three warpgroups (3x64x1owghnck: `h` lets check() take 3); n and c
# alone on the sub layers; the dense plans; the fixtures.
$C --dtypes bf16 --prefill-variants 3x64x1owghvu,3x64x1owghvunc,3x64x1owghvunck,3x64x1owghvun,3x64x1owghvuc --layers 0 $DN
$C --dtypes bf16 --prefill-variants 3x64x1owghvunck,3x64x1owghvunc,3x64x1owghvun,3x64x1owghvuc $FX
$C --dtypes f16 --prefill-variants 3x64x1owghvunck,2x64x1owgnck,3x64x1owghnck,2x64x1owg $FX
$C --dtypes f32 --prefill-variants 3x64x1owghvunck $FX
echo "done fixtures $(date -u +%T)"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunck,3x64x1owghvu $U
echo "done bf16 base+cand $(date -u +%T)"
$C --dtypes f16 --prefill-variants 2x64x1owgnck,2x64x1owg $U
echo "done f16 full $(date -u +%T)"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunc $U
echo "done bf16 nc $(date -u +%T)"
$C --dtypes bf16 --prefill-variants 3x64x1owghvun,3x64x1owghvuc --layers $SUB $U
$C --dtypes f16 --prefill-variants 3x64x1owghnck --layers $SUB $U
$C --dtypes f16 --prefill-variants 3x64x1owghnck,2x64x1owgnck,2x64x1owg --layers 0 $DN
echo "done sub $(date -u +%T)"
