#!/bin/bash
# Device call 2 (i8-decode): correctness (default variant 2x6), full decode benchmark, SDPA peer, sanitizer.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
s=$(date +%s)
{
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader
echo "== fixtures"; timeout 20 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml 2>&1 | tail -9
echo "t=$(( $(date +%s) - s ))"
echo "== llama"; timeout 35 ./cuda_check --upstream plans/llama-3-8b.json --kv-heads 8 --dtypes f16,bf16 2>&1 | tail -5
echo "t=$(( $(date +%s) - s ))"
echo "== vicuna"; timeout 35 ./cuda_check --upstream plans/vicuna-7b.json --kv-heads 32 --dtypes f16,bf16 2>&1 | tail -5
echo "t=$(( $(date +%s) - s ))"
} > $OUT/check.txt 2>&1
M="--model vicuna-7b:32:plans/vicuna-7b.json --model llama-3-8b:8:plans/llama-3-8b.json --batch 16,4 --prompt 4096,16384"
timeout 45 ./attention_bench $M --variants 2x6 --replays 7 --json $OUT/bench.jsonl --spans /tmp/spans.json > $OUT/bench.md 2> $OUT/bench.err
echo "bench t=$(( $(date +%s) - s ))" >> $OUT/bench.err
timeout 25 python3 decode_peers.py --spans /tmp/spans.json --batch 16,4 --flex-layers none --replays 7 \
  --json $OUT/peers.jsonl --moa $OUT/bench.jsonl > $OUT/peers.md 2>&1
echo "peers t=$(( $(date +%s) - s ))" >> $OUT/bench.err
{
echo "== memcheck"; timeout 20 compute-sanitizer --tool memcheck ./cuda_check plans/fixture-gqa.toml --dtypes bf16 2>&1 | tail -5
echo "== racecheck"; timeout 20 compute-sanitizer --tool racecheck ./cuda_check plans/fixture-gqa.toml --dtypes bf16 2>&1 | tail -5
echo "t=$(( $(date +%s) - s ))"
} > $OUT/sanitizer.txt 2>&1
