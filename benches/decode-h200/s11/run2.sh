#!/bin/bash
# Device call 17 (session 11, branch s11-decode): the rule chosen from call 16
# (waves:N:packed: per cluster size 8, 4, 2 the shortest chunk from the waves chunk up to
# 5 tiles longer whose packed list fits 91 % of the resident clusters of 4 or 8, all of
# 2; the shortest longest item wins, ties to the larger size; else the pairs rule) against
# the runtime's default, every layer of both plans, B = 16 and 4, 4k and 16k, where a model
# runs attention (after the cache write's shape, programmatic launch), and dense SDPA in
# the same call. The kernel is call 16's (checked there: every decode case also as packed
# clusters of 4 and 8); only the host's lists differ, so no check runs here.
# Carry .dev-s11-decode (call 16's files, attention_bench.gz replaced); on the device:
#   bash .dev-s11-decode/run2.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
s=$(date +%s)
END=${END:-60}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r17; mkdir -p $R /tmp/cubins /tmp/bin
tar -xJf $C/cubins.tar.xz -C /tmp/cubins
gunzip -c $C/attention_bench.gz > /tmp/bin/attention_bench && chmod +x /tmp/bin/attention_bench
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tgz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
T="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7 --producer --launch pdl"
timeout $(cap 20) /tmp/bin/attention_bench --model llama-3-8b:8:$L $T --chunks auto,waves:10:packed \
  --json $R/bench-llama.jsonl > $R/bench-llama.md 2> $R/bench-llama.err
echo "bench llama rc=$?"; tail -2 $R/bench-llama.err; pack bench-llama
timeout $(cap 20) /tmp/bin/attention_bench --model vicuna-7b:32:$V $T --chunks auto,waves:2:packed \
  --json $R/bench-vicuna.jsonl > $R/bench-vicuna.md 2> $R/bench-vicuna.err
echo "bench vicuna rc=$?"; tail -2 $R/bench-vicuna.err; pack bench-vicuna
timeout $(cap 25) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err
echo "peers rc=$?"; tail -2 $R/peers.err
cat $R/bench-llama.jsonl $R/bench-vicuna.jsonl > $R/bench.jsonl
python3 $C/tables.py $R/bench.jsonl $R/peers.jsonl /dev/null > $R/summary.md 2>&1; head -24 $R/summary.md
pack done
