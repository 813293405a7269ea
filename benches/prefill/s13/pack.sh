#!/bin/bash
# Packs the carry folder of s13-prefill's call (run from the repository root after
# build-cubins.sh): this branch's release binaries and main's bench_prefill (OLD) gzipped,
# the cubins as cubins.tar.xz and cubins-old.tar.xz, the peers script, the call's script.
set -e
D=${D:-/work/main/.dev-s13-prefill}
NEW=${NEW:-/tmp/s13p/cubins}
OLDC=${OLDC:-/tmp/s13p/cubins-old}
for b in bench_prefill cuda_check; do gzip -c target/release/examples/$b > $D/$b.gz; done
gzip -c /work/main/target/release/examples/bench_prefill > $D/bench_prefill_old.gz
cp benches/prefill/s13/run-s13.sh benches/prefill/ab.py benches/peers/prefill_peers.py $D/
tar cf - -C $NEW . | xz -6 -T2 > $D/cubins.tar.xz
tar cf - -C $OLDC . | xz -6 -T2 > $D/cubins-old.tar.xz
du -sh $D; ls $D
