#!/bin/bash
# Device call 1 (i8-decode): correctness, sanitizer, a first timing of variants on 4 layers, peers.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee $OUT/env.txt
s=$(date +%s)
{
for spec in "plans/fixture-mha.toml plans/fixture-gqa.toml" "--upstream plans/vicuna-7b.json --kv-heads 32 --dtypes f16,bf16" "--upstream plans/llama-3-8b.json --kv-heads 8 --dtypes f16,bf16"; do
  echo "== cuda_check $spec"; timeout 150 ./cuda_check $spec 2>&1 | tail -40; echo "rc=$? t=$(( $(date +%s) - s ))"
done
} > $OUT/check.txt 2>&1
echo "check done t=$(( $(date +%s) - s ))"
timeout 200 ./attention_bench --model vicuna-7b:32:plans/vicuna-7b.json --model llama-3-8b:8:plans/llama-3-8b.json \
  --batch 16,4 --prompt 4096,16384 --variants 4x3,4x4 --chunks auto --layers 0,2,17,31 \
  --json $OUT/bench1.jsonl --spans $OUT/spans.json > $OUT/bench1.md 2> $OUT/bench1.err
echo "bench rc=$? t=$(( $(date +%s) - s ))"
timeout 150 python3 decode_peers.py --spans $OUT/spans.json --batch 16,4 --flex-layers 0,17 \
  --json $OUT/peers1.jsonl --moa $OUT/bench1.jsonl > $OUT/peers1.md 2> $OUT/peers1.err
echo "peers rc=$? t=$(( $(date +%s) - s ))"
{
echo "== memcheck"; timeout 90 compute-sanitizer --tool memcheck ./cuda_check plans/fixture-gqa.toml --dtypes bf16 2>&1 | tail -15
echo "== racecheck"; timeout 90 compute-sanitizer --tool racecheck ./cuda_check plans/fixture-gqa.toml --dtypes bf16 2>&1 | tail -15
} > $OUT/sanitizer.txt 2>&1
echo "sanitizer done t=$(( $(date +%s) - s ))"
