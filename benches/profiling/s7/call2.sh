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
# The Llama-2-7B-shape 8k profile (random weights, the KV-group-chunked forward of
# session 6) beside run.sh: GPU memory sampled every 100 ms.
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$R/mem.txt" 2>/dev/null &
SMI=$!
nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits -lms 500 >"$R/mem_apps.txt" 2>/dev/null &
SMA=$!
TV=(); [ -x /usr/bin/time ] && TV=(/usr/bin/time -v)
("${TV[@]}" timeout "${CAP7B:-200}" $S/moa profile --device cuda --like llama-2-7b \
    --calib $S/r7b.jsonl --lengths 8192 -o $S/p7b --quiet >"$R/profile7b.log" 2>&1
echo "7B-shape profile exit $?" >>"$R/profile7b.log"; cp $S/p7b/timing_8192.tsv "$R/" 2>/dev/null) &
P7=$!
echo "7B-shape profile started as pid $P7's child"
M=$S/moa W=$S/w O=$R D=$S/d DEADLINE=${DEADLINE:-200} bash "$D/run.sh" 2>&1 | tee "$R/run.log"
wait $P7; kill $SMI $SMA
echo "7B-shape 8k profile:"; grep -E "Maximum resident|Elapsed|exit" "$R/profile7b.log"; tail -3 "$R/profile7b.log"
cat "$R/timing_8192.tsv" 2>/dev/null
echo "GPU memory used (all processes), MiB: max $(sort -n "$R/mem.txt" | tail -1), samples $(wc -l <"$R/mem.txt")"
echo "largest single process, MiB: $(sort -t, -k2 -n "$R/mem_apps.txt" | tail -1)"
tar czf "$OUT/results.tgz" -C "$OUT" r && rm -rf "$R"
ls -la "$OUT"
