#!/bin/bash
# Builds the cubins of s16-prefill's call (run from the repository root after the release
# build of the examples): main's defaults (bf16 3x64x1owghvuncaf, its narrow layers'
# 3x64x1owghvunctf, f16 3x64x1owghncf) on every layer of both upstream plans and the
# fixtures, copied from session 15's second call where the keys match (this branch changes
# no prefill source), and Vicuna-7B's masks with 8 KV heads (layers 7, 15, 17, 27) for the
# MHA / GQA comparison. The engine ops (ops.cu) compile with NVRTC on the device.
set -e
D=${D:-/work/main/.dev-s16-prefill}
NEW=${NEW:-/tmp/s16p/cubins}
OLD=${OLD:-/tmp/s15p/cubins2}
mkdir -p $NEW
export MOA_CUDA_CACHE=/work/cuda-cache; eval "$(scripts/cuda-deps.sh)"
U="--upstream v:32:$D/plans/vicuna7b.json --upstream l:8:$D/plans/llama3_8b.json"
FX="$D/plans/fixture-mha.toml $D/plans/fixture-gqa.toml $D/plans/fixture-gqa-sink160.toml"
C="target/release/examples/cuda_cubins --out $NEW --from $OLD"
$C --dtypes bf16 --prefill-variants 3x64x1owghvuncaf $FX $U | tail -1
$C --dtypes f16 --prefill-variants 3x64x1owghncf $FX $U | tail -1
echo "done main's $(date -u +%T)"
$C --dtypes bf16 --prefill-variants 3x64x1owghvuncaf --layers 7,15,17,27 --upstream v8:8:$D/plans/vicuna7b_kv8.json | tail -1
echo "done kv8 $(date -u +%T)"
