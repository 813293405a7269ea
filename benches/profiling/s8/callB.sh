#!/bin/bash
# Issue 9 (session 8), device call B of 2 (the machine still warm from call A, which left
# the binary and the GGUF's first part in /tmp/s8 and started the 7B-shape profile): the
# GGUF put together and checked, python3-doc's sources, then run.sh beside the 7B profile;
# then the 7B profile's memory trace and timing; everything packed into $OUT/results.tgz.
# Carry folder as $1.
set -u
D=$1; S=/tmp/s8; R=$OUT/r; mkdir -p "$R"
t0=$(date +%s); el() { echo "[$(($(date +%s) - t0)) s] $*"; }
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/cuda/lib64 MOA_CUDA_INCLUDE=/usr/local/cuda/include
export MOA_CACHE=/tmp/moa-cache
mkdir -p /tmp/moa-cache /usr/share/doc/python3/html/_sources
tar xzf "$D/pydoc.tgz" -C /usr/share/doc/python3/html/_sources
G=/tmp/moa-cache/SmolLM2-135M-Instruct.Q4_1.gguf
cat $S/gguf.part1 "$D/gguf.part2" >$G
[ "$(sha256sum $G | cut -c1-64)" = "$(cat "$D/gguf.sha256")" ] || { echo "GGUF checksum differs"; ls -la $S; exit 1; }
echo "GGUF ok"; cat $S/r7b/run7b.out; tail -c 300 $S/r7b/profile7b.log
mkdir -p "$S/d"; tar xzf "$D/ppl.tgz" -C "$S/d"
mkdir -p "$S/d/plans"; cp "$D"/plans/*.toml "$S/d/plans/"; cp "$D"/*.py "$S/d/"
M=$S/moa W=$S/w O=$R D=$S/d DEADLINE=${DEADLINE:-185} bash "$D/run.sh" 2>&1 | tee "$R/run.log"
# The 7B-shape profile: wait for it up to WAIT7B more seconds, then stop it.
for _ in $(seq "${WAIT7B:-60}"); do [ -f $S/r7b/done ] && break; sleep 1; done
# (r7b/pid is the profile's `timeout`, which passes a TERM on to the profile; run7b.sh
# then stops its two samplers and writes r7b/done.)
[ -f $S/r7b/done ] || { echo "7B profile still running: stopped"; kill "$(cat $S/r7b/pid)"; sleep 3; }
cp -r $S/r7b "$R/"
echo "7B-shape 8k profile:"; grep -E "Maximum resident|Elapsed|exit" $S/r7b/profile7b.log; grep -v "^ *[0-9]*: " $S/r7b/profile7b.log | tail -4
cat $S/r7b/timing_8192.tsv 2>/dev/null
echo "7B wall: $(( $(cat $S/r7b/end 2>/dev/null || date +%s) - $(cat $S/r7b/start) )) s"
echo "GPU memory used (all processes), MiB: max $(sort -n $S/r7b/mem7b.txt | tail -1), samples $(wc -l <$S/r7b/mem7b.txt)"
echo "largest single process, MiB: $(sort -t, -k2 -n $S/r7b/mem_apps.txt | tail -1)"
tar czf "$OUT/results.tgz" -C "$OUT" r && rm -rf "$R"
ls -la "$OUT"; el "call B end"
