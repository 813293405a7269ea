#!/bin/bash
# Session 10's third prefill call: the correctness checks of 3x64x1owghvu (the winner of
# run-s10.sh's A/B) before it becomes the bf16 default: cuda_check on both upstream plans
# in bf16 (f16 keeps 2x64x1owg, checked before), compute-sanitizer memcheck and racecheck
# on fixture-gqa bf16. Run from the carry folder .dev-s10-prefill/ (as run-s10.sh).
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
V=${V:-3x64x1owghvu}
[ -d cubins ] || { mkdir -p cubins && tar xJf cubins.tar.xz -C cubins; }
for b in bench_prefill cuda_check; do [ -x $b ] || { gunzip -f $b.gz; chmod +x $b; }; done
{
  echo "== llama3_8b bf16, prefill $V"; timeout 10 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $V 2>&1 | tail -3
  echo "== vicuna7b bf16, prefill $V"; timeout 12 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 --prefill-variant $V 2>&1 | tail -3
  echo "== memcheck, prefill $V"; timeout 5 compute-sanitizer --tool memcheck ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $V 2>&1 | tail -2
  echo "== racecheck (fixture-mha), prefill $V"; timeout 12 compute-sanitizer --tool racecheck ./cuda_check plans/fixture-mha.toml --dtypes bf16 --prefill-variant $V 2>&1 | tail -2
} 2>&1 | tee "$RESULT_DIR/check-3x64.txt"
