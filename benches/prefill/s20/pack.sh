#!/bin/bash
# Fills the carry folder of s20-prefill's call (run from the repository root after the
# release builds and the cubins): bench_prefill and cuda_check gzipped, the cubins of NEW
# as cubins.tar.xz, plans/ (benches/prefill/s17/plans.sh), this folder's scripts, s19's
# blocked.py / ab_report.py and s18's blocked_report.py.
#   cargo build --release --example bench_prefill --example cuda_check --example cuda_cubins
#   (cubins: see call1.sh's header)   NEW=/tmp/s20p/cubins bash benches/prefill/s20/pack.sh
set -e
D=${D:-/work/main/.dev-s20-prefill}
NEW=${NEW:-/tmp/s20p/cubins}
mkdir -p "$D"
D=$D bash benches/prefill/s17/plans.sh
for b in bench_prefill cuda_check; do gzip -c target/release/examples/$b > "$D/$b.gz"; done
cp benches/prefill/s20/*.sh benches/prefill/s19/blocked.py benches/prefill/s19/ab_report.py \
    benches/prefill/s18/blocked_report.py "$D/"
tar cf - -C "$NEW" . | xz -6 -T2 > "$D/cubins.tar.xz"
du -sh "$D"; ls "$D"
