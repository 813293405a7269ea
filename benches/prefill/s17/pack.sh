#!/bin/bash
# Packs the carry folder of s17-prefill's calls (run from the repository root after the
# release builds, plans.sh and build-cubins.sh): this branch's release bench_prefill and
# cuda_check gzipped, the cubins as cubins.tar.xz, ab.py, the peers script, ideal.py,
# ncu_summary.py, ncu_clock.py and the calls' scripts.
set -e
D=${D:-/work/main/.dev-s17-prefill}
NEW=${NEW:-/tmp/s17p/cubins}
for b in bench_prefill cuda_check; do gzip -c target/release/examples/$b > $D/$b.gz; done
cp benches/prefill/s17/run-s17*.sh benches/prefill/s17/ncu_clock.py benches/prefill/s17/pick.py benches/prefill/ab.py benches/peers/prefill_peers.py \
   benches/prefill/ncu_summary.py benches/prefill/s16/ideal.py $D/
tar cf - -C $NEW . | xz -6 -T2 > $D/cubins.tar.xz
du -sh $D; ls $D
