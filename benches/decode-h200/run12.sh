#!/bin/bash
# Device call 12 (session 9, branch s9-decode), ≤ ~150 s of work after the machine's start.
#  1. Checks, concurrently (correctness only, no timing): cuda_check on the fixtures (f32,
#     f16, bf16) and on both upstream plans in bf16 and f16 (every decode case also as
#     three programmatic launches back to back and in clusters of 2 and 8), with the
#     kernel that asks the L2 for its first K/V tiles before griddepcontrol.wait;
#     compute-sanitizer memcheck and racecheck on fixture-gqa bf16.
#  2. The CUDA engine's GPU tests (release test binary; decode attention now a
#     programmatic launch after moa_rope_kv, cluster lists), the GGUF test skipped.
#  3. attention_bench --producer --launch plain,pdl: every layer of both plans, B = 16
#     and 4, 4k and 16k, each decode after a kernel of moa_rope_kv's shape (Q + the
#     current K/V slot), minus that kernel alone; then plain launches without the
#     producer, this branch's kernel and the call-11 kernel (old binary) in turn.
#  4. decode_peers.py --producer: dense SDPA alone and after the same writes.
# Carry folder .dev-s9-decode: attention_bench, cuda_check, cuda_engine.gz,
# attention_bench_old (+ cubins-old.tar.xz), cubins.tar.xz, spans.json, decode_peers.py,
# producer.py, this script. On the device: bash .dev-s9-decode/run12.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* 2>/dev/null | head -1); [ -n "$cb" ] && ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
s=$(date +%s)
END=${END:-140}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r12; mkdir -p $R /tmp/cubins
tar -xJf $C/cubins.tar.xz -C /tmp/cubins; tar -xJf $C/cubins-old.tar.xz -C /tmp/cubins
gunzip -c $C/cuda_engine.gz > /tmp/cuda_engine && chmod +x /tmp/cuda_engine
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tgz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
# 1 + 2: checks and tests side by side (each its own process; the GPU is shared, nothing timed).
( timeout 30 $C/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml > $R/check-fixtures.txt 2>&1; echo "rc=$?" >> $R/check-fixtures.txt ) &
( timeout 60 $C/cuda_check --upstream $L --kv-heads 8 --dtypes bf16,f16 > $R/check-llama.txt 2>&1; echo "rc=$?" >> $R/check-llama.txt ) &
( timeout 60 $C/cuda_check --upstream $V --kv-heads 32 --dtypes bf16,f16 > $R/check-vicuna.txt 2>&1; echo "rc=$?" >> $R/check-vicuna.txt ) &
( for tool in memcheck racecheck; do echo "== $tool"; timeout 45 compute-sanitizer --tool $tool $C/cuda_check plans/fixture-gqa.toml --dtypes bf16 2>&1 | tail -6; done > $R/sanitizer.txt 2>&1 ) &
( timeout 60 /tmp/cuda_engine --test-threads 1 --skip real_smollm2 > $R/engine-tests.txt 2>&1; echo "rc=$?" >> $R/engine-tests.txt ) &
wait
for f in check-fixtures check-llama check-vicuna; do echo "== $f"; grep -E "pass|FAIL|error|rc=" $R/$f.txt | tail -8; done
grep -E "SUMMARY|==" $R/sanitizer.txt; grep -E "^test |test result|rc=" $R/engine-tests.txt | tail -14
pack checks
# 3: timing (alone on the GPU from here).
B="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7"
timeout $(cap 40) $C/attention_bench --model llama-3-8b:8:$L --model vicuna-7b:32:$V $B --producer --launch plain,pdl \
  --json $R/bench-producer.jsonl > $R/bench-producer.md 2> $R/bench-producer.err; echo "producer rc=$?"; tail -2 $R/bench-producer.err
pack producer
timeout $(cap 20) $C/attention_bench --model llama-3-8b:8:$L --model vicuna-7b:32:$V $B \
  --json $R/bench-plain.jsonl > $R/bench-plain.md 2> $R/bench-plain.err; echo "plain rc=$?"
timeout $(cap 20) $C/attention_bench_old --model llama-3-8b:8:$L --model vicuna-7b:32:$V $B \
  --json $R/bench-old.jsonl > $R/bench-old.md 2> $R/bench-old.err; echo "old rc=$?"
pack plain
timeout $(cap 40) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err; echo "peers rc=$?"; tail -3 $R/peers.err
cat $R/peers.md
python3 $C/producer.py $R/bench-producer.jsonl $R/bench-plain.jsonl $R/bench-old.jsonl $R/peers.jsonl > $R/summary.md 2>&1
cat $R/summary.md
pack done
cat $R/log.txt
