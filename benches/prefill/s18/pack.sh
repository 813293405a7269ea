#!/bin/bash
# Fills the carry folder of s18-prefill's calls (run from the repository root after the
# release builds and build-cubins.sh): bench_prefill, cuda_check and the tests/cuda_engine.rs
# binary gzipped, the cubins as cubins.tar.xz, plans/ (benches/prefill/s17/plans.sh), the
# scripts.
set -e
D=${D:-/work/main/.dev-s18-prefill}
NEW=${NEW:-/tmp/s18p/cubins}
mkdir -p "$D"
D=$D bash benches/prefill/s17/plans.sh
for b in bench_prefill cuda_check; do gzip -c target/release/examples/$b > "$D/$b.gz"; done
ENG=$(ls -t target/release/deps/cuda_engine-* | grep -v '\.d$' | head -1)
gzip -c "$ENG" > "$D/cuda_engine.gz"
cp benches/prefill/s18/*.sh benches/prefill/s18/*.py benches/prefill/s17/ncu_clock.py "$D/"
tar cf - -C "$NEW" . | xz -6 -T2 > "$D/cubins.tar.xz"
du -sh "$D"; ls "$D"
