#!/bin/bash
# Session 8's second prefill call (issue 8 item 2): the `v` variant (2x64x1owghv: P·V on
# f16 operands with V converted to f16 before the kernel, one scale per KV head, by the
# module's pre-pass kernels) against the default 2x64x1owg. Run from the carry folder
# (.dev-s8-prefill: bench_prefill, cuda_check, cubins/, plans/, ab.py, prefill_peers.py;
# build and cubin commands: benches/RESULTS.md, "Call 12"). Everything it writes comes
# back as $OUT/results.tgz, repacked after every step.
#
#  1. Checks: cuda_check of NEW on the fixtures (f32, f16, bf16) and on both upstream
#     plans in bf16 (f16 storage generates OWG's kernels); compute-sanitizer memcheck and
#     racecheck of NEW on fixture-gqa bf16.
#  2. Every layer of both plans at 4k x 4 and 16k x 1: OWG and NEW in turn, --rounds 4
#     (the pre-pass is inside NEW's time); ab.py: A/A noise and NEW / OWG per row.
#  3. Layers 0 and 31 at 4k x 4: NEW's outputs against OWG's (--compare).
#  4. Dense causal SDPA on the same shapes (prefill_peers.py): moa / ideal per row.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
OWG=${OWG:-2x64x1owg}
NEW=${NEW:-2x64x1owghv}
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
# LAYERS=0,9,17,31 cuts step 2 to those layers (a short call).
LO=${LAYERS:+--layers-only $LAYERS}
s=$(date +%s); t() { echo "# $1 t=$(( $(date +%s) - s )) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
t start

if [ -z "$SKIP_CHECK" ]; then
{
  echo "== fixtures f32,f16,bf16, prefill $NEW"; timeout 20 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --prefill-variant $NEW 2>&1 | tail -8
  echo "== vicuna7b bf16, prefill $NEW"; timeout 30 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 --prefill-variant $NEW 2>&1 | tail -4
  echo "== llama3_8b bf16, prefill $NEW"; timeout 25 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $NEW 2>&1 | tail -4
  for tool in memcheck racecheck; do
    echo "== $tool, prefill $NEW"; timeout 25 compute-sanitizer --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $NEW 2>&1 | tail -2
  done
} > "$OUT/check.txt" 2>&1
cat "$OUT/check.txt"
t check
fi

VARS=$OWG,$NEW
timeout 40 ./bench_prefill $P $LO --variants $VARS --prompts 4096 --rows 4 --reps 5 --rounds 4 --out "$OUT/ab4k.jsonl" > "$OUT/ab4k.md" 2>&1
t ab4k
timeout 50 ./bench_prefill $P $LO --variants $VARS --prompts 16384 --rows 1 --reps 5 --rounds 4 --out "$OUT/ab16k.jsonl" > "$OUT/ab16k.md" 2>&1
t ab16k
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
cat "$OUT/ab_full.md"
t ab

timeout 20 ./bench_prefill $P --variants $VARS --layers-only 0,31 --prompts 4096 --rows 4 --reps 1 --warmups 0 --compare --out "$OUT/compare.jsonl" > "$OUT/compare.md" 2>&1
cat "$OUT/compare.md"
t compare

timeout 30 python3 prefill_peers.py "$OUT/ab_full.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
cat "$OUT/peers_table.md"
t peers
