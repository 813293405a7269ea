#!/bin/bash
# Fills the carry folder of s19-prefill's call (run from the repository root after the
# release builds and the cubins): bench_prefill and cuda_check gzipped, the cubins of NEW
# as cubins.tar.xz, plans/ (benches/prefill/s17/plans.sh), this folder's scripts and s18's
# blocked_report.py.
set -e
D=${D:-/work/main/.dev-s19-prefill}
NEW=${NEW:-/tmp/s19p/cubins}
mkdir -p "$D"
D=$D bash benches/prefill/s17/plans.sh
for b in bench_prefill cuda_check; do gzip -c target/release/examples/$b > "$D/$b.gz"; done
cp benches/prefill/s19/*.sh benches/prefill/s19/*.py benches/prefill/s18/blocked_report.py "$D/"
tar cf - -C "$NEW" . | xz -6 -T2 > "$D/cubins.tar.xz"
du -sh "$D"; ls "$D"
