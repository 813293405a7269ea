#!/bin/bash
# Packs the carry folder of s15-prefill's call (run from the repository root after
# build-cubins.sh): this branch's release bench_prefill and cuda_check gzipped, the cubins
# as cubins.tar.xz, ab.py, the peers script and the call's script (plans/ as copied by the
# recipe in benches/RESULTS.md, "Session 15").
set -e
D=${D:-/work/main/.dev-s15-prefill}
NEW=${NEW:-/tmp/s15p/cubins}
for b in bench_prefill cuda_check; do gzip -c target/release/examples/$b > $D/$b.gz; done
cp benches/prefill/s15/run-s15.sh benches/prefill/ab.py benches/peers/prefill_peers.py $D/
tar cf - -C $NEW . | xz -6 -T2 > $D/cubins.tar.xz
du -sh $D; ls $D
