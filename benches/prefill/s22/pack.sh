#!/bin/bash
# (Letter `x` existed at 701610c only: measured by call1.sh and removed; build there to rerun.)
# Fills the carry folder of s22-prefill's call (run from the repository root after the
# release builds and the cubins): bench_prefill and cuda_check gzipped, the cubins of NEW
# as cubins.tar.xz, plans/ (benches/prefill/s17/plans.sh), this folder's call script, s19's
# blocked.py / ab_report.py.
#   cargo build --release --example bench_prefill --example cuda_check --example cuda_cubins
#   source /work/cuda-env.sh; export MOA_CUDA_CACHE=/work/cuda-cache
#   V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
#   L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
#   cuda_cubins --out /tmp/s22p/cubins --from <earlier default cubins> --dtypes bf16 --upstream v:32:$V --upstream l:8:$L \
#       --prefill-variants 3x64x1owghvuncafbdm,3x64x1owghvuncafbdxm,3x64x1owghvunctfbdxm
#   cuda_cubins --out /tmp/s22p/cubins --dtypes bf16 --prefill-variants 2x64x1owghvunctbdx \
#       plans/fixture-gqa.toml benches/prefill/s12/fixture-gqa-sink160.toml
#   NEW=/tmp/s22p/cubins bash benches/prefill/s22/pack.sh
set -e
D=${D:-/work/main/.dev-s22-prefill}
NEW=${NEW:-/tmp/s22p/cubins}
mkdir -p "$D"
D=$D bash benches/prefill/s17/plans.sh
for b in bench_prefill cuda_check; do gzip -c target/release/examples/$b > "$D/$b.gz"; done
cp benches/prefill/s22/call1.sh benches/prefill/s19/blocked.py benches/prefill/s19/ab_report.py "$D/"
tar cf - -C "$NEW" . | xz -6 -T2 > "$D/cubins.tar.xz"
du -sh "$D"; ls "$D"
