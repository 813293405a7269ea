#!/bin/bash
# Device call 4 (s4-i8-decode): the kernel with the bf16 P residual. Correctness on the
# fixtures, every layer of both upstream plans with the default kernel (4x3, runtime chunks)
# and dense SDPA in the same call, the upstream-plan checks (f16, bf16), compute-sanitizer,
# then the variant and chunk-policy sweeps on layers 0, 2, 17, 31. Everything is packed
# into $OUT/results.tar.gz after each step (the device tool returns few files).
# Carry folder: attention_bench, cuda_check (release), decode_peers.py, select.py, plans/,
# cubins.tar.xz (cuda_cubins output, see benches/RESULTS.md).
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
s=$(date +%s)
el() { echo $(( $(date +%s) - s )); }
R=/tmp/r; mkdir -p $R /tmp/cubins && tar -xJf cubins.tar.xz -C /tmp/cubins
pack() { echo "$1 t=$(el)" >> $R/log.txt; tar -czf $OUT/results.tar.gz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
timeout 20 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml > $R/check-fixtures.txt 2>&1
pack fixtures
M="--model vicuna-7b:32:plans/vicuna-7b.json --model llama-3-8b:8:plans/llama-3-8b.json --batch 16,4 --prompt 4096,16384"
timeout 40 ./attention_bench $M --variants 4x3 --replays 7 --json $R/bench.jsonl --spans $R/spans.json > $R/bench.md 2> $R/bench.err
pack bench
timeout 40 python3 decode_peers.py --spans $R/spans.json --batch 16,4 --flex-layers none --replays 7 \
  --json $R/peers.jsonl --moa $R/bench.jsonl > $R/peers.md 2> $R/peers.err
pack peers
for spec in "llama-3-8b.json --kv-heads 8" "vicuna-7b.json --kv-heads 32"; do
  echo "== $spec"; timeout 60 ./cuda_check --upstream plans/$spec --dtypes f16,bf16 2>&1 | tail -30
done > $R/check-upstream.txt 2>&1
pack upstream
for tool in memcheck racecheck; do
  echo "== $tool"; timeout 25 compute-sanitizer --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 2>&1 | tail -6
done > $R/sanitizer.txt 2>&1
pack sanitizer
timeout 30 ./attention_bench $M --variants 4x3,4x3w,2x6w,4x2w --layers 0,2,17,31 --no-dense --replays 5 \
  --json $R/sweep-variants.jsonl > $R/sweep-variants.md 2> $R/sweep-variants.err
python3 select.py --by variant $R/sweep-variants.jsonl > $R/select-variants.txt 2>&1
pack variants
timeout 20 ./attention_bench $M --variants 4x3 --chunks balanced:2:50,balanced:2:100,1024 --layers 0,2,17,31 --no-dense --replays 5 \
  --json $R/sweep-chunks.jsonl > $R/sweep-chunks.md 2> $R/sweep-chunks.err
grep '"variant":"4x3"' $R/sweep-variants.jsonl > $R/auto.jsonl
python3 select.py --by chunk_arg $R/auto.jsonl $R/sweep-chunks.jsonl > $R/select-chunks.txt 2>&1
pack chunks
cat $R/log.txt
