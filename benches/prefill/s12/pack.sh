#!/bin/bash
# Packs the carry folder of the session-12 prefill call (run from the repository root
# after build-cubins.sh): release binaries gzipped, the cubins as cubins.tar.xz (the folder
# itself moves to $KEEP, outside the checkout that `run` sends).
set -e
D=${D:-/work/main/.dev-s12-prefill}
KEEP=${KEEP:-/tmp/pf/cubins-s12}
for b in bench_prefill cuda_check; do gzip -c target/release/examples/$b > $D/$b.gz; done
gzip -c "$(ls -t target/release/deps/cuda_engine-* | grep -v '\.d$' | head -1)" > $D/cuda_engine.gz
cp benches/prefill/s12/run-s12.sh $D/
tar cf - -C $D/cubins . | xz -6 -T2 > $D/cubins.tar.xz
rm -rf "$KEEP"; mv $D/cubins "$KEEP"
du -sh $D; ls $D
