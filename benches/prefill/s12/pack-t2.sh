#!/bin/bash
# Packs the carry folder of s12-prefill2's call (run from the repository root after
# build-cubins-t2.sh): release binaries gzipped, the cubins as cubins.tar.xz (the folder
# itself moves to $KEEP, outside the checkout that `run` sends), the call's script.
set -e
D=${D:-/work/main/.dev-s12-prefill2}
KEEP=${KEEP:-/tmp/p2/cubins-t2}
for b in bench_prefill cuda_check; do gzip -c target/release/examples/$b > $D/$b.gz; done
cp benches/prefill/s12/run-s12-t2.sh $D/
tar cf - -C $D/cubins . | xz -6 -T2 > $D/cubins.tar.xz
rm -rf "$KEEP"; mv $D/cubins "$KEEP"
du -sh $D; ls $D
