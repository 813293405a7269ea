#!/bin/bash
# Device call 8 (s7-decode), one call of ≤ 100 s, after call 7 (benches/RESULTS.md "Call 7
# and 8"): the waves model with larger per-wave overheads (waves:6, waves:10) against
# waves:2 on every layer of both upstream plans, SDPA in the same call, and the checks of
# the candidate default waves:10. Steps in priority order, each capped; everything is
# packed into $OUT/results.tar.gz after each step.
#  1. cuda_check on the fixtures with --chunk-policy waves:10 (f32, f16, bf16)
#  2. attention_bench, Llama-3-8B then Vicuna-7B, every layer, B = 16 and 4, 4k and 16k,
#     waves:2, waves:6, waves:10 (a layer two policies cut alike is timed once)
#  3. decode_peers.py: dense SDPA for both models
#  4. cuda_check on both upstream plans, bf16 and f16, with --chunk-policy waves:10
# Carry folder: attention_bench, cuda_check, cubins.tar.xz, spans.json, policies.py, this.
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
s=$(date +%s)
END=${END:-100}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r8; mkdir -p $R /tmp/cubins && tar -xJf $C/cubins.tar.xz -C /tmp/cubins
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tar.gz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
P=waves:10
timeout $(cap 15) $C/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --chunk-policy $P > $R/check-fixtures.txt 2>&1
grep -E "pass|FAIL" $R/check-fixtures.txt | tail -8
pack fixtures
for m in "llama-3-8b:8:$L" "vicuna-7b:32:$V"; do
  n=${m%%:*}
  timeout $(cap 25) $C/attention_bench --model $m --batch 16,4 --prompt 4096,16384 --no-dense --replays 7 \
    --chunks waves:2,waves:6,$P --json $R/bench-$n.jsonl > $R/bench-$n.md 2> $R/bench-$n.err
  tail -1 $R/bench-$n.err
done
pack bench
timeout $(cap 25) python3 benches/peers/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none \
  --replays 7 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err
for n in llama-3-8b vicuna-7b; do
  python3 $C/policies.py $R/bench-$n.jsonl $R/peers.jsonl --base waves:2 > $R/policies-$n.md 2>&1
  cat $R/policies-$n.md
done
pack peers
for spec in "$L --kv-heads 8" "$V --kv-heads 32"; do
  echo "== $spec"; timeout $(cap 35) $C/cuda_check --upstream $spec --dtypes bf16,f16 --chunk-policy $P 2>&1 | tail -14
done > $R/check-upstream.txt 2>&1
grep -E "pass|FAIL|error" $R/check-upstream.txt
pack upstream
cat $R/log.txt
