#!/bin/bash
# Builds the cubins of s17-prefill's call (run from the repository root after the release
# build of the examples): main's defaults (bf16 3x64x1owghvuncaf, narrow layers
# 3x64x1owghvunctf, f16 3x64x1owghncf) copied from session 16's build where the keys match
# (the default's source is byte-identical), and the launch orders `j`, `m`, `i` (a pair's
# query tiles 2, 4, 8 at a time) on every layer of both upstream plans and the fixtures.
set -e
D=${D:-/work/main/.dev-s17-prefill}
NEW=${NEW:-/tmp/s17p/cubins}
OLD=${OLD:-/tmp/s16p/cubins}
mkdir -p $NEW
export MOA_CUDA_CACHE=/work/cuda-cache; eval "$(scripts/cuda-deps.sh)"
U="--upstream v:32:$D/plans/vicuna7b.json --upstream l:8:$D/plans/llama3_8b.json"
FX="$D/plans/fixture-mha.toml $D/plans/fixture-gqa.toml $D/plans/fixture-gqa-sink160.toml"
C="target/release/examples/cuda_cubins --out $NEW --from $OLD"
$C --dtypes bf16 --prefill-variants 3x64x1owghvuncaf,3x64x1owghvuncafj,3x64x1owghvuncafm $FX $U | tail -1
echo "done DEF, j, m $(date -u +%T)"
$C --dtypes f16 --prefill-variants 3x64x1owghncf $FX $U | tail -1
$C --dtypes bf16 --prefill-variants 3x64x1owghvuncafi $U | tail -1
echo "done i $(date -u +%T)"
# For call 2's checks (f16 with the winning order): f16 DEF16 + j, m.
if [ -n "$F16" ]; then
  $C --dtypes f16 --prefill-variants 3x64x1owghncfj,3x64x1owghncfm $FX $U | tail -1
  echo "done f16 j, m $(date -u +%T)"
fi
