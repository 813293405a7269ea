#!/bin/bash
# Packs the carry folder of s16-prefill's call (run from the repository root after the
# release builds and build-cubins.sh): this branch's release bench_prefill, cuda_check and
# tests/cuda_engine.rs binaries gzipped, the cubins as cubins.tar.xz, ab.py, the peers
# script, ncu_summary.py and the call's script. plans/ is made by plans.sh.
set -e
D=${D:-/work/main/.dev-s16-prefill}
NEW=${NEW:-/tmp/s16p/cubins}
for b in bench_prefill cuda_check; do gzip -c target/release/examples/$b > $D/$b.gz; done
T=$(ls -t target/release/deps/cuda_engine-* | grep -v '\.d$' | head -1)
gzip -c $T > $D/cuda_engine.gz
cp benches/prefill/s16/run-s16.sh benches/prefill/ab.py benches/peers/prefill_peers.py benches/prefill/ncu_summary.py $D/
tar cf - -C $NEW . | xz -6 -T2 > $D/cubins.tar.xz
du -sh $D; ls $D
