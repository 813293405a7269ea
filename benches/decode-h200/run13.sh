#!/bin/bash
# Device call 13 (session 9, branch s9-decode), ≈ 90 s of work: call 12 found the L2
# prefetch before griddepcontrol.wait 1-6% slower; this times the kernel without it (the
# call-11 decode kernel) where a model runs it:
#  1. attention_bench --producer --launch plain,pdl, every layer of both plans, B = 16 and
#     4, 4k and 16k (decode after a kernel of moa_rope_kv's shape, minus that kernel alone),
#     then the same kernel alone (plain launches, no producer);
#  2. decode_peers.py --producer: SDPA alone and after the same writes;
#  3. the CUDA engine's GPU tests with this kernel (engine: cluster lists, decode_pdl).
# Carry folder .dev-s9-decode: c13/{attention_bench, cubins.tar.xz, cuda_engine.gz},
# spans.json, decode_peers.py, producer.py, this script. On the device: bash .dev-s9-decode/run13.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* 2>/dev/null | head -1); [ -n "$cb" ] && ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
s=$(date +%s)
END=${END:-120}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r13; mkdir -p $R /tmp/cubins
tar -xJf $C/c13/cubins.tar.xz -C /tmp/cubins
gunzip -c $C/c13/cuda_engine.gz > /tmp/cuda_engine && chmod +x /tmp/cuda_engine
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tgz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7"
timeout $(cap 35) $C/c13/attention_bench --model llama-3-8b:8:$L --model vicuna-7b:32:$V $B --producer --launch plain,pdl \
  --json $R/bench-producer.jsonl > $R/bench-producer.md 2> $R/bench-producer.err; echo "producer rc=$?"; tail -2 $R/bench-producer.err
pack producer
timeout $(cap 20) $C/c13/attention_bench --model llama-3-8b:8:$L --model vicuna-7b:32:$V $B \
  --json $R/bench-plain.jsonl > $R/bench-plain.md 2> $R/bench-plain.err; echo "plain rc=$?"
pack plain
timeout $(cap 30) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err; echo "peers rc=$?"; tail -3 $R/peers.err
python3 $C/producer.py $R/bench-producer.jsonl $R/bench-plain.jsonl /dev/null $R/peers.jsonl > $R/summary.md 2>&1
cat $R/summary.md
pack peers
timeout $(cap 40) /tmp/cuda_engine --test-threads 1 --skip real_smollm2 > $R/engine-tests.txt 2>&1; echo "rc=$?" >> $R/engine-tests.txt
grep -E "^test |test result|rc=" $R/engine-tests.txt | tail -14
pack done
cat $R/log.txt
