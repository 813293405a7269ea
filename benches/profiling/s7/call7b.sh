#!/bin/bash
# Issue 9 (session 7), a further call prepared but not run (device budget): the
# Llama-2-7B-shape 8k profile with the backward's first step in head chunks (the fix after
# call 2's OOM), alone on the GPU: peak memory (nvidia-smi every 100 ms) and seconds per
# 8k sample. Carry: the `cuda`-feature moa built after that fix (moa.xz) and this script.
# About 60 s of random weights and upload, then the walk; CAP bounds it.
set -u
D=$1; S=/tmp/s7b; mkdir -p $S
t0=$(date +%s); el() { echo "[$(($(date +%s) - t0)) s] $*"; }
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$D/moa.xz" $S/moa
chmod +x $S/moa
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/cuda/lib64
python3 - <<'PY'
import json, random
r = random.Random(0)
p = [1] + [r.randrange(3, 32000) for _ in range(8175)]
a = [r.randrange(3, 32000) for _ in range(16)]
s = {"id": "random-8192-0", "task": "passkey", "length_level": 8192, "prompt_tokens": p,
     "response_tokens": a, "n_tokens": len(p) + len(a), "response_span": [len(p), len(p) + len(a)],
     "source": "random token ids", "seed": 0, "dense_answer_text": "",
     "expected": {"answer": "", "correct": False}}
open("/tmp/s7b/r7b.jsonl", "w").write(json.dumps(s) + "\n")
PY
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$OUT/mem7b.txt" 2>/dev/null &
SMI=$!
TV=(); [ -x /usr/bin/time ] && TV=(/usr/bin/time -v)
"${TV[@]}" timeout "${CAP:-280}" $S/moa profile --device cuda --like llama-2-7b \
    --calib $S/r7b.jsonl --lengths 8192 -o $S/p7b --quiet >"$OUT/profile7b.log" 2>&1
echo "7B profile exit $?"
kill $SMI
el "done"
grep -E "Maximum resident|Elapsed" "$OUT/profile7b.log"; grep -v "<unknown>" "$OUT/profile7b.log" | tail -4
cp $S/p7b/timing_8192.tsv "$OUT/" 2>/dev/null; cat $S/p7b/timing_8192.tsv 2>/dev/null
echo "GPU memory used, MiB: max $(sort -n "$OUT/mem7b.txt" | tail -1), samples $(wc -l <"$OUT/mem7b.txt")"
