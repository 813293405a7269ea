#!/bin/bash
# Fills the carry folder of s29-tma's call (run from the repository root after the release
# builds and the cubins): bench_prefill and cuda_check gzipped, the cubins as cubins.tar.xz,
# plans/ (benches/prefill/s17/plans.sh), the call script, s19's blocked.py / ab_report.py.
#   cargo build --release --locked --config 'profile.release.package.moa.codegen-units=13' \
#       --example bench_prefill --example cuda_check --example cuda_cubins   (copied to BIN)
#   source /work/cuda-env.sh; C=/tmp/s29-tma-bin/cuda_cubins
#   V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
#   L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
#   $C --out /tmp/s29-tma/cubins --dtypes bf16 --prefill-variants 2x64x1owghvunctbdHQT \
#       plans/fixture-gqa.toml benches/prefill/s12/fixture-gqa-sink160.toml
#   $C --out /tmp/s29-tma/cubins --from /tmp/s28-prefill/cubins --dtypes bf16 --upstream v:32:$V \
#       --upstream l:8:$L --prefill-variants 3x64x1owghvuncafbdHQm,3x64x1owghvuncafbdHQTm
#   NEW=/tmp/s29-tma bash benches/prefill/s29/tma/pack.sh
set -e
D=${D:-/work/main/.dev-s29-tma}
NEW=${NEW:-/tmp/s29-tma}
BIN=${BIN:-/tmp/s29-tma-bin}
mkdir -p "$D"
D=$D bash benches/prefill/s17/plans.sh
gzip -c "$BIN/bench_prefill" > "$D/bench_prefill.gz"
gzip -c "$BIN/cuda_check" > "$D/cuda_check.gz"
cp benches/prefill/s29/tma/call*.sh benches/prefill/s19/blocked.py benches/prefill/s19/ab_report.py "$D/"
tar cf - -C "$NEW" cubins | xz -6 -T2 > "$D/cubins.tar.xz"
du -sh "$D"; ls "$D"
