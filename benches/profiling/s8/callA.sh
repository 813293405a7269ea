#!/bin/bash
# Issue 9 (session 8), device call A of 2: unpacks the `cuda`-feature moa (built after the
# backward walk's gradients were detached, 6e0cfbc) and keeps it with the GGUF's first part
# in /tmp/s8 for call B (the machine stays warm 30 s), then starts the Llama-2-7B-shape 8k
# profile (random weights, one random 8192-token sample) in its own session (setsid), so it
# runs on through call B; nvidia-smi samples the whole GPU every 100 ms and every process
# every 200 ms into /tmp/s8/r7b. Carry folder as $1.
set -u
D=$1; S=/tmp/s8; R=$S/r7b; mkdir -p $S $R
t0=$(date +%s); el() { echo "[$(($(date +%s) - t0)) s] $*"; }
cp "$D/gguf.part1" $S/
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$D/moa.xz" $S/moa
chmod +x $S/moa
el "unpacked"; nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader
python3 - <<'PY'
import json, random
r = random.Random(0)
p = [1] + [r.randrange(3, 32000) for _ in range(8175)]
a = [r.randrange(3, 32000) for _ in range(16)]
s = {"id": "random-8192-0", "task": "passkey", "length_level": 8192, "prompt_tokens": p,
     "response_tokens": a, "n_tokens": len(p) + len(a), "response_span": [len(p), len(p) + len(a)],
     "source": "random token ids", "seed": 0, "dense_answer_text": "",
     "expected": {"answer": "", "correct": False}}
open("/tmp/s8/r7b.jsonl", "w").write(json.dumps(s) + "\n")
PY
cat >$S/run7b.sh <<'SH'
#!/bin/bash
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/cuda/lib64
R=/tmp/s8/r7b
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >$R/mem7b.txt 2>/dev/null &
A=$!
nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits -lms 200 >$R/mem_apps.txt 2>/dev/null &
B=$!
date +%s >$R/start
TV=(); [ -x /usr/bin/time ] && TV=(/usr/bin/time -v)
timeout ${CAP7B:-230} "${TV[@]}" /tmp/s8/moa profile --device cuda --like llama-2-7b \
    --calib /tmp/s8/r7b.jsonl --lengths 8192 -o /tmp/s8/p7b --quiet >$R/profile7b.log 2>&1 &
P=$!; echo $P >$R/pid   # timeout's: a TERM to it ends its whole process group
wait $P
echo "exit $?" >>$R/profile7b.log
date +%s >$R/end
cp /tmp/s8/p7b/timing_8192.tsv /tmp/s8/p7b/summary_8192.tsv $R/ 2>/dev/null
sleep 1; kill $A $B
touch $R/done
SH
chmod +x $S/run7b.sh
setsid nohup $S/run7b.sh >$R/run7b.out 2>&1 </dev/null &
el "7B-shape profile started (setsid)"
sleep 3; ls -la $S $R; cat $R/run7b.out
