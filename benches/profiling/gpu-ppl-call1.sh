#!/bin/bash
# Issue 9 (session 6), device call 1 of 2: keeps the moa binary (`cuda` feature) and the
# GGUF's first part on the warm machine for call 2, and checks that an 8k sample of a
# Llama-2-7B-shape model (random weights, f32 as the profiler runs) profiles within the
# H200's memory: `moa profile --device cuda --like llama-2-7b`, one 8192-token sample of
# random token ids, GPU memory sampled every 100 ms by nvidia-smi.
# Run from the repository root with the carry folder as $1; results under $OUT.
set -u
D=$1; S=/tmp/s6; mkdir -p $S
t0=$(date +%s); el() { echo "[$(($(date +%s) - t0)) s] $*"; }
cp "$D/gguf.part1" $S/ && gunzip -c "$D/moa.gz" >$S/moa && chmod +x $S/moa
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/cuda/lib64
el "unpacked"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 - <<'PY'
import json, random
r = random.Random(0)
p = [1] + [r.randrange(3, 32000) for _ in range(8175)]
a = [r.randrange(3, 32000) for _ in range(16)]
s = {"id": "random-8192-0", "task": "passkey", "length_level": 8192, "prompt_tokens": p,
     "response_tokens": a, "n_tokens": len(p) + len(a), "response_span": [len(p), len(p) + len(a)],
     "source": "random token ids", "seed": 0, "dense_answer_text": "",
     "expected": {"answer": "", "correct": False}}
open("/tmp/s6/r7b.jsonl", "w").write(json.dumps(s) + "\n")
PY
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$OUT/mem7b.txt" 2>/dev/null &
SMI=$!
TV=(); [ -x /usr/bin/time ] && TV=(/usr/bin/time -v)
"${TV[@]}" timeout "${CAP:-75}" $S/moa profile --device cuda --like llama-2-7b \
    --calib $S/r7b.jsonl --lengths 8192 -o $S/p7b --quiet >"$OUT/profile7b.log" 2>&1
echo "exit $?"
kill $SMI
el "7B-shape profile done"
grep -E "Maximum resident|Elapsed" "$OUT/profile7b.log"
tail -4 "$OUT/profile7b.log"
cat $S/p7b/timing_8192.tsv 2>/dev/null
echo "GPU memory used, MiB: max $(sort -n "$OUT/mem7b.txt" | tail -1), samples $(wc -l <"$OUT/mem7b.txt")"
ls -la $S
