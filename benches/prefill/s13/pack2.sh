#!/bin/bash
# Packs the carry folder of s13-prefill's second call (run from the repository root after
# build-cubins2.sh): this call's release binaries, the first call's bench_prefill (C1) and
# main's (OLD), gzipped; the cubins of the three as tar.xz; the call's script.
set -e
D=${D:-/work/main/.dev-s13-prefill}
for b in bench_prefill cuda_check; do gzip -c target/release/examples/$b > $D/$b.gz; done
cp /tmp/s13p/bench_prefill_c1.gz $D/bench_prefill_c1.gz
gzip -c /work/main/target/release/examples/bench_prefill > $D/bench_prefill_old.gz
cp benches/prefill/s13/run-s13b.sh benches/prefill/ab.py benches/peers/prefill_peers.py $D/
tar cf - -C /tmp/s13p/cubins2 . | xz -6 -T2 > $D/cubins.tar.xz
tar cf - -C /tmp/s13p/cubins . | xz -6 -T2 > $D/cubins-c1.tar.xz
tar cf - -C /tmp/s13p/cubins-old . | xz -6 -T2 > $D/cubins-old.tar.xz
rm -f $D/run-s13.sh
du -sh $D; ls $D
