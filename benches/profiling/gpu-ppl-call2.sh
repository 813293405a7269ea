#!/bin/bash
# Issue 9 (session 6), device call 2 of 2 (the machine still warm from call 1, which left
# the binary and the GGUF's first part in /tmp/s6): Vulkan loader, python3-doc's
# tutorial/faq/howto sources (calibration text), the GGUF put together and checked, then
# benches/profiling/gpu-ppl-run.sh; every result packed into $OUT/results.tgz.
# Run from the repository root with the carry folder as $1.
set -u
D=$1; S=/tmp/s6; R=$OUT/r; mkdir -p "$R"
for f in "$D"/gl/*.deb; do dpkg -x "$f" / 2>/dev/null; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/cuda/lib64 MOA_CACHE=/tmp/moa-cache
mkdir -p /tmp/moa-cache /usr/share/doc/python3/html/_sources
cp -r "$D"/pydoc/* /usr/share/doc/python3/html/_sources/
G=/tmp/moa-cache/SmolLM2-135M-Instruct.Q4_1.gguf
cat $S/gguf.part1 "$D/gguf.part2" >$G
[ "$(sha256sum $G | cut -c1-64)" = "$(cat "$D/gguf.sha256")" ] || { echo "GGUF checksum differs"; ls -la $S; exit 1; }
echo "GGUF ok"
M=$S/moa W=$S/w O=$R PPL="$(ls "$D"/ppl/*.rst.txt | tr '\n' ' ')" DEADLINE=${DEADLINE:-185} \
    EVAL_A_CAP=${EVAL_A_CAP:-115} bash "$D/run.sh" 2>&1 | tee "$R/run.log"
tar czf "$OUT/results.tgz" -C "$OUT" r && rm -rf "$R"
ls -la "$OUT"
