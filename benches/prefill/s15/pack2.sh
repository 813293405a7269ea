#!/bin/bash
# Packs the carry folder of s15-prefill's second call (run from the repository root after
# build-cubins2.sh): this call's release bench_prefill and cuda_check gzipped, the cubins as
# cubins2.tar.xz, ab.py, the peers script and the call's script; the first call's files go.
set -e
D=${D:-/work/main/.dev-s15-prefill}
NEW=${NEW:-/tmp/s15p/cubins2}
rm -rf $D/cubins.tar.xz $D/cubins $D/run-s15.sh $D/bench_prefill $D/cuda_check
for b in bench_prefill cuda_check; do gzip -c target/release/examples/$b > $D/$b.gz; done
cp benches/prefill/s15/run-s15b.sh benches/prefill/ab.py benches/peers/prefill_peers.py $D/
tar cf - -C $NEW . | xz -6 -T2 > $D/cubins2.tar.xz
du -sh $D; ls $D
