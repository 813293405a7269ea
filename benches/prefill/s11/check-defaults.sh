#!/bin/bash
# The checks session 11's call left for the final defaults (run from the carry folder
# .dev-s11-prefill/ after pack.sh, on a warm machine: about 100 s): cuda_check of the bf16
# default 3x64x1owghvunc and the f16 default 2x64x1owgnc on both upstream plans,
# the `_vfix` path, memcheck and racecheck of both on fixture-gqa, f16 2x64x1owgnc timed
# against 2x64x1owg, 2x64x1owgnck and three warpgroups (3x64x1owghnc: the next f16
# candidate, 0.73x 2x64x1owg on 40 rows in session 11) on every layer, then
# tests/cuda_engine.rs (release test binary built with these defaults).
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
B=${B:-3x64x1owghvunc}; F=${F:-2x64x1owgnc}
[ -d cubins ] || { mkdir -p cubins && tar xJf cubins.tar.xz -C cubins; }
for b in bench_prefill cuda_check cuda_engine; do [ -x $b ] || { gunzip -f $b.gz; chmod +x $b; }; done
{
  echo "== vicuna7b bf16, prefill $B"; timeout 40 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 --prefill-variant $B 2>&1 | tail -1
  echo "== llama3_8b bf16, prefill $B"; timeout 20 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $B 2>&1 | tail -1
  echo "== vicuna7b f16, prefill $F"; timeout 40 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes f16 --prefill-variant $F 2>&1 | tail -1
  echo "== llama3_8b f16, prefill $F"; timeout 20 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes f16 --prefill-variant $F 2>&1 | tail -1
  echo "== llama3_8b bf16, V x 2^[16,0,-13,0], prefill $B"
  timeout 30 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $B --v-exponents 16,0,-13,0 2>&1 | tail -1
  for tool in memcheck racecheck; do
    echo "== $tool bf16, prefill $B"; timeout 20 compute-sanitizer --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $B 2>&1 | tail -1
    echo "== $tool f16, prefill $F"; timeout 20 compute-sanitizer --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes f16 --prefill-variant $F 2>&1 | tail -1
  done
} 2>&1 | tee "$RESULT_DIR/check-defaults.txt"
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
timeout 40 ./bench_prefill $P --dtype f16 --variants 2x64x1owg,$F,2x64x1owgnck,3x64x1owghnc --prompts 4096 --rows 4 --reps 5 --rounds 2 --out "$RESULT_DIR/f16_4k.jsonl" > /dev/null 2>&1
timeout 50 ./bench_prefill $P --dtype f16 --variants 2x64x1owg,$F,2x64x1owgnck,3x64x1owghnc --prompts 16384 --rows 1 --reps 5 --rounds 2 --out "$RESULT_DIR/f16_16k.jsonl" > /dev/null 2>&1
python3 ab.py "$RESULT_DIR/f16_4k.jsonl" "$RESULT_DIR/f16_16k.jsonl" > "$RESULT_DIR/f16_ab.md" 2>&1; sed -n '/^A\/B/,/^Per/p' "$RESULT_DIR/f16_ab.md"
(cd "$(dirname "$PWD")" && MOA_CUBIN_DIR= timeout 120 ./.dev-s11-prefill/cuda_engine --test-threads 1 > "$RESULT_DIR/engine.txt" 2>&1)
grep -E "^test |test result" "$RESULT_DIR/engine.txt" | tail -14
