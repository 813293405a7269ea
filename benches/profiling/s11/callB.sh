#!/bin/bash
# Issue 9 (session 11), device call B, the last (the machine still warm from calls A1, A2,
# which left the binary and the first parts of the GGUF in /tmp/s11): the GGUF put together
# and checked, python3-doc's sources, then run.sh; results packed into $OUT/results.tgz and
# the profiles into $OUT/profiles.tgz. Carry folder as $1 (made by pack.sh).
set -u
D=$1; S=/tmp/s11; R=$OUT/r; mkdir -p "$R"
t0=$(date +%s)
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/cuda/lib64 MOA_CUDA_INCLUDE=/usr/local/cuda/include
export MOA_CACHE=/tmp/moa-cache
# (python, not tar: the image need not have xz)
untar() { python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$1" "$2"; }
[ -x $S/moa ] || { echo "no /tmp/s11/moa: call A did not run on this machine"; exit 1; }
mkdir -p /tmp/moa-cache /usr/share/doc/python3/html/_sources
untar "$D/pydoc.txz" /usr/share/doc/python3/html/_sources
G=/tmp/moa-cache/SmolLM2-135M-Instruct.Q4_1.gguf
cat $S/gguf.part* "$D"/gguf.part* >$G
[ "$(sha256sum $G | cut -c1-64)" = "$(cat "$D/gguf.sha256")" ] || { echo "GGUF checksum differs"; ls -la $S; exit 1; }
echo "[$(($(date +%s) - t0)) s] GGUF ok"
mkdir -p "$S/d"; untar "$D/ppl.txz" "$S/d"
mkdir -p "$S/d/plans"; cp "$D"/plans/*.toml "$S/d/plans/"; cp "$D"/*.py "$S/d/"
M=$S/moa W=$S/w O=$R D=$S/d DEADLINE=${DEADLINE:-175} bash "$D/run.sh" 2>&1 | tee "$R/run.log"
tar czf "$OUT/profiles.tgz" -C "$R" profiles && rm -rf "$R/profiles"
tar czf "$OUT/results.tgz" -C "$OUT" r && rm -rf "$R"
ls -la "$OUT"; echo "[$(($(date +%s) - t0)) s] call B end"
