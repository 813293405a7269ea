#!/bin/bash
# Device call 10 (s8-decode), one call of ≤ 150 s: the thread-block-cluster merge
# (benches/RESULTS.md "Call 10"). Steps in priority order, each capped; everything is packed
# into $OUT/results.tar.gz after each step.
#  1. cuda_check on the fixtures (f32, f16, bf16), runtime chunks as clusters of 4: every
#     decode case also runs as clusters of 2 and 8 blocks (the second after a programmatic
#     launch) and in chunks of one key tile (the counter merge)
#  2. attention_bench, Llama-3-8B then Vicuna-7B, every layer, B = 16 and 4, 4k and 16k:
#     the runtime's policy (auto), cluster:2, cluster:4, cluster:8 and cluster:auto (a
#     layer two policies cut alike is timed once)
#  3. decode_peers.py: dense SDPA for both models, then policies.py tables
#  4. cuda_check on both upstream plans, bf16 and f16, runtime chunks by cluster:auto (the
#     candidate default; cluster cases included)
#  5. compute-sanitizer memcheck and racecheck on fixture-gqa bf16 (cluster cases included)
# Carry folder: attention_bench, cuda_check, cubins.tar.xz, spans.json, policies.py, this.
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
export PATH=/usr/local/cuda/bin:$PATH
s=$(date +%s)
END=${END:-150}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r10; mkdir -p $R /tmp/cubins && tar -xJf $C/cubins.tar.xz -C /tmp/cubins
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tar.gz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
timeout $(cap 20) $C/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --chunk-policy cluster:4 > $R/check-fixtures.txt 2>&1
grep -E "pass|FAIL|error" $R/check-fixtures.txt | tail -8
pack fixtures
for m in "llama-3-8b:8:$L:cluster:auto:10" "vicuna-7b:32:$V:cluster:auto:2"; do
  n=${m%%:*}; spec=$(echo "$m" | cut -d: -f1-3); auto=$(echo "$m" | cut -d: -f4-)
  timeout $(cap 30) $C/attention_bench --model $spec --batch 16,4 --prompt 4096,16384 --no-dense --replays 7 \
    --chunks auto,cluster:2,cluster:4,cluster:8,$auto --json $R/bench-$n.jsonl > $R/bench-$n.md 2> $R/bench-$n.err
  tail -2 $R/bench-$n.err
done
pack bench
timeout $(cap 25) python3 benches/peers/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none \
  --replays 7 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err
tail -2 $R/peers.err
for n in llama-3-8b vicuna-7b; do
  python3 $C/policies.py $R/bench-$n.jsonl $R/peers.jsonl --base auto > $R/policies-$n.md 2>&1
  cat $R/policies-$n.md
done
pack peers
for spec in "$L --kv-heads 8 --chunk-policy cluster:auto:10" "$V --kv-heads 32 --chunk-policy cluster:auto:2"; do
  echo "== $spec"; timeout $(cap 30) $C/cuda_check --upstream $spec --dtypes bf16,f16 2>&1 | tail -14
done > $R/check-upstream.txt 2>&1
grep -E "pass|FAIL|error" $R/check-upstream.txt
pack upstream
for tool in memcheck racecheck; do
  echo "== $tool"; timeout $(cap 25) compute-sanitizer --tool $tool $C/cuda_check plans/fixture-gqa.toml --dtypes bf16 2>&1 | tail -6
done > $R/sanitizer.txt 2>&1
grep -E "SUMMARY|==" $R/sanitizer.txt
pack sanitizer
cat $R/log.txt
