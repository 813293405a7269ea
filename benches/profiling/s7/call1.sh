#!/bin/bash
# Issue 9 (session 7), device call 1 of 2: runs the GPU tests of tests/cuda_engine.rs on
# perplexity (prefill = decode steps) and greedy parity, unpacks the moa binary (`cuda`
# feature) and keeps it with the GGUF's first part in /tmp/s7 for call 2 (the machine stays
# warm), checks that this binary's CUDA engine runs (`moa bench` on a random SmolLM2-shape
# model: eval --backend cuda depends on it), and writes call 2's random 8k sample for the
# Llama-2-7B-shape profile (which call 2 runs beside its own work).
# Run from the repository root with the carry folder as $1; results under $OUT.
set -u
D=$1; S=/tmp/s7; mkdir -p $S
t0=$(date +%s); el() { echo "[$(($(date +%s) - t0)) s] $*"; }
cp "$D/gguf.part1" $S/
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$D/moa.xz" $S/moa
chmod +x $S/moa
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/cuda/lib64 MOA_CUDA_INCLUDE=/usr/local/cuda/include
el "unpacked"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# The prefill-vs-decode perplexity test (and the engine's greedy parity) of
# tests/cuda_engine.rs, built here (debug, default features) and carried.
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$D/cuda_engine_test.xz" $S/cuda_engine_test
chmod +x $S/cuda_engine_test
MOA_CUDA_CACHE=$S/cc timeout 45 $S/cuda_engine_test --test-threads 1 --nocapture perplexity engine_greedy >"$OUT/cuda_engine_test.txt" 2>&1
echo "cuda_engine_test exit $?"; grep -E "storage|F32|Bf16|test |result" "$OUT/cuda_engine_test.txt" | tail -12
el "tests done"
timeout 25 $S/moa bench --like smollm2-135m --prompt 1024 --batch 4 --new 8 >"$OUT/bench-smoke.txt" 2>&1
echo "bench smoke exit $?"; tail -4 "$OUT/bench-smoke.txt"
python3 - <<'PY'
import json, random
r = random.Random(0)
p = [1] + [r.randrange(3, 32000) for _ in range(8175)]
a = [r.randrange(3, 32000) for _ in range(16)]
s = {"id": "random-8192-0", "task": "passkey", "length_level": 8192, "prompt_tokens": p,
     "response_tokens": a, "n_tokens": len(p) + len(a), "response_span": [len(p), len(p) + len(a)],
     "source": "random token ids", "seed": 0, "dense_answer_text": "",
     "expected": {"answer": "", "correct": False}}
open("/tmp/s7/r7b.jsonl", "w").write(json.dumps(s) + "\n")
PY
ls -la $S
