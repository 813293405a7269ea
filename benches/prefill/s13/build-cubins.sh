#!/bin/bash
# Builds the cubins of s13-prefill's device call (run from the repository root after the
# release build of the examples): bf16 BASE (3x64x1owghvunc, with this branch's pre-pass)
# and CAND (3x64x1owghvunca: `t` on the narrow layers) on every layer of both upstream
# plans (CAND's other layers are BASE's cubins), layer 0 of the dense plans, the fixtures
# (and `t` there); and with main's cuda_cubins (OLD = /work/main's build at 43a6fcc, the
# pre-pass before this branch) BASE on layers 27 and 31 of both plans (the pre-pass does
# not depend on the layer). f16 is not built: this branch changes no f16 source (the
# fixtures' f16 cubins of both builds have the same keys, checked at the end).
set -e
D=${D:-/work/main/.dev-s13-prefill}
NEW=${NEW:-/tmp/s13p/cubins}
OLDC=${OLDC:-/tmp/s13p/cubins-old}
OLDBIN=${OLDBIN:-/work/main/target/release/examples/cuda_cubins}
export MOA_CUDA_CACHE=/work/cuda-cache; eval "$(scripts/cuda-deps.sh)"
U="--upstream v:32:$D/plans/vicuna7b.json --upstream l:8:$D/plans/llama3_8b.json"
DN="--upstream d8:8:$D/plans/dense_gqa.json --upstream d32:32:$D/plans/dense_mha.json"
FX="$D/plans/fixture-mha.toml $D/plans/fixture-gqa.toml $D/plans/fixture-gqa-sink160.toml"
C="target/release/examples/cuda_cubins --out $NEW"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunc,3x64x1owghvunca,3x64x1owghvunct $FX
$C --dtypes bf16 --prefill-variants 3x64x1owghvunc --layers 0 $DN
echo "done fixtures, dense $(date -u +%T)"
$C --dtypes bf16 --prefill-variants 3x64x1owghvunc,3x64x1owghvunca $U
echo "done bf16 $(date -u +%T)"
$OLDBIN --out $OLDC --dtypes bf16 --prefill-variants 3x64x1owghvunc --layers 27,31 $U
echo "done old $(date -u +%T)"
mkdir -p /tmp/s13p/f16-new /tmp/s13p/f16-old
$C --out /tmp/s13p/f16-new --dtypes f16 --prefill-variants 3x64x1owghnc $D/plans/fixture-gqa.toml
$OLDBIN --out /tmp/s13p/f16-old --dtypes f16 --prefill-variants 3x64x1owghnc $D/plans/fixture-gqa.toml
diff <(ls /tmp/s13p/f16-new) <(ls /tmp/s13p/f16-old) && echo "f16 sources unchanged"
