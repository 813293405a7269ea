#!/bin/bash
# Issue 9 (session 7), device call 2 of 2 (the machine still warm from call 1, which left
# the binary and the GGUF's first part in /tmp/s7): the GGUF put together and checked,
# python3-doc's tutorial/faq/howto sources (calibration text), then run.sh; every result
# packed into $OUT/results.tgz. Run from the repository root with the carry folder as $1.
set -u
D=$1; S=/tmp/s7; R=$OUT/r; mkdir -p "$R"
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/cuda/lib64 MOA_CUDA_INCLUDE=/usr/local/cuda/include
export MOA_CACHE=/tmp/moa-cache
mkdir -p /tmp/moa-cache /usr/share/doc/python3/html/_sources
tar xzf "$D/pydoc.tgz" -C /usr/share/doc/python3/html/_sources
G=/tmp/moa-cache/SmolLM2-135M-Instruct.Q4_1.gguf
cat $S/gguf.part1 "$D/gguf.part2" >$G
[ "$(sha256sum $G | cut -c1-64)" = "$(cat "$D/gguf.sha256")" ] || { echo "GGUF checksum differs"; ls -la $S; exit 1; }
echo "GGUF ok"
mkdir -p "$S/ppl"; tar xzf "$D/ppl.tgz" -C "$S/ppl"
mkdir -p "$S/d/plans"; cp "$D"/plans/*.toml "$S/d/plans/"; cp "$D"/*.py "$S/d/"
mv "$S/ppl" "$S/d/ppl"
M=$S/moa W=$S/w O=$R D=$S/d DEADLINE=${DEADLINE:-200} bash "$D/run.sh" 2>&1 | tee "$R/run.log"
tar czf "$OUT/results.tgz" -C "$OUT" r && rm -rf "$R"
ls -la "$OUT"
