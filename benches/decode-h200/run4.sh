#!/bin/bash
# Device call 3 (s4-i8-decode; its outputs beyond 8 files were not returned, hence run5.sh): correctness of every variant on the fixtures, a variant
# sweep and a chunk-policy sweep on layers 0, 2, 17, 31, then every layer of the winner
# with dense SDPA in the same call, the upstream-plan checks and compute-sanitizer.
# Carry folder: attention_bench, cuda_check (release), decode_peers.py, select.py,
# plans/, cubins.tar.xz (cuda_cubins output, see benches/RESULTS.md).
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
s=$(date +%s)
el() { echo $(( $(date +%s) - s )); }
mkdir -p /tmp/cubins && tar -xJf cubins.tar.xz -C /tmp/cubins
VARIANTS=${VARIANTS:-4x3,4x3w,2x6w,4x2w}
POLICIES=${POLICIES:-balanced:2:50,balanced:2:100,1024}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $OUT/env.txt
echo "start t=$(el)" > $OUT/log.txt
# 1. Fixtures: default (f32 scalar + f16 + bf16), every variant in f16 and bf16.
{
echo "== default"; timeout 15 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml 2>&1 | tail -8
for v in ${VARIANTS//,/ }; do
  echo "== $v"; timeout 12 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --dtypes f16,bf16 --variant $v 2>&1 | tail -5
done
} > $OUT/check-fixtures.txt 2>&1
echo "fixtures t=$(el)" >> $OUT/log.txt
M="--model vicuna-7b:32:plans/vicuna-7b.json --model llama-3-8b:8:plans/llama-3-8b.json --batch 16,4 --prompt 4096,16384"
# 2. Variants, runtime chunks, layers 0 2 17 31 (no dense).
timeout 40 ./attention_bench $M --variants $VARIANTS --layers 0,2,17,31 --no-dense --replays 5 \
  --json $OUT/sweep-variants.jsonl > $OUT/sweep-variants.md 2> $OUT/sweep-variants.err
BEST_V=$(python3 select.py --by variant $OUT/sweep-variants.jsonl 2>> $OUT/select.txt)
BEST_V=${BEST_V:-4x3}
echo "variants t=$(el) best=$BEST_V" >> $OUT/log.txt
# 3. Chunk policies with the best variant (auto = the runtime's, from step 2).
timeout 30 ./attention_bench $M --variants $BEST_V --chunks $POLICIES --layers 0,2,17,31 --no-dense --replays 5 \
  --json $OUT/sweep-chunks.jsonl > $OUT/sweep-chunks.md 2> $OUT/sweep-chunks.err
grep "\"variant\":\"$BEST_V\"" $OUT/sweep-variants.jsonl > /tmp/auto.jsonl
BEST_C=$(python3 select.py --by chunk_arg /tmp/auto.jsonl $OUT/sweep-chunks.jsonl 2>> $OUT/select.txt)
BEST_C=${BEST_C:-auto}
echo "chunks t=$(el) best=$BEST_C" >> $OUT/log.txt
# 4. Every layer, the winner, with the kernel's own dense run; then SDPA in the same call.
timeout 50 ./attention_bench $M --variants $BEST_V --chunks $BEST_C --replays 7 \
  --json $OUT/bench.jsonl --spans /tmp/spans.json > $OUT/bench.md 2> $OUT/bench.err
echo "bench t=$(el)" >> $OUT/log.txt
timeout 30 python3 decode_peers.py --spans /tmp/spans.json --batch 16,4 --flex-layers none --replays 7 \
  --json $OUT/peers.jsonl --moa $OUT/bench.jsonl > $OUT/peers.md 2> $OUT/peers.err
echo "peers t=$(el)" >> $OUT/log.txt
# 5. Upstream plans, every layer, f16 and bf16, the winning variant.
{
echo "== llama $BEST_V"; timeout 30 ./cuda_check --upstream plans/llama-3-8b.json --kv-heads 8 --dtypes f16,bf16 --variant $BEST_V 2>&1 | tail -5
echo "t=$(el)"
echo "== vicuna $BEST_V"; timeout 30 ./cuda_check --upstream plans/vicuna-7b.json --kv-heads 32 --dtypes f16,bf16 --variant $BEST_V 2>&1 | tail -5
echo "t=$(el)"
} > $OUT/check-upstream.txt 2>&1
echo "upstream t=$(el)" >> $OUT/log.txt
# 6. compute-sanitizer on the GQA fixture, the winning variant, if time is left.
{
for tool in memcheck racecheck; do
  if [ $(el) -lt 195 ]; then
    echo "== $tool"; timeout 15 compute-sanitizer --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant $BEST_V 2>&1 | tail -4
  else echo "== $tool skipped (t=$(el))"; fi
done
} > $OUT/sanitizer.txt 2>&1
echo "end t=$(el)" >> $OUT/log.txt
