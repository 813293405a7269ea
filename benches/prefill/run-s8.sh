#!/bin/bash
# Session 8's prefill device call (issue 8 item 2), run from the carry folder
# (.dev-s8-prefill: bench_prefill, cuda_check, cubins/, plans/ with dense_gqa.json and
# dense_mha.json = benches/prefill/dense-32x32.json, ab.py, prefill_peers.py; build and
# cubin commands: benches/RESULTS.md, "Session 8"). Everything it writes comes back as
# $OUT/results.tgz, repacked after every step.
#
#  1. Checks: cuda_check of OWG (2x64x1owg, the candidate default) on the fixtures (f32,
#     f16, bf16) and on both upstream plans in bf16 and f16; of OWGH (2x64x1owgh: P·V on
#     f16 operands) on the fixtures and both upstream plans in bf16 (its f16 kernels are
#     OWG's: nothing to convert); of BIG on the fixtures; compute-sanitizer memcheck, racecheck and synccheck of
#     both on fixture-gqa bf16.
#  2. Every layer of both plans at 4k x 4 and 16k x 1: 2x64x2 (the default), OWG and OWGH
#     timed in turn, --rounds 4 (A B C A B C ...); ab.py: A/A noise (even
#     against odd rounds of one variant), every row's ratio to 2x64x2.
#  3. 8 layers and the dense plan (every span = N: the core's speed against dense SDPA):
#     the same three, the one-part 2x64x1opwg (fails the bf16 tolerance; the speed OWGH
#     should reach), BIG (2x128x1owgh: OWGH on 128-key tiles, 3 stages) and 2x128x1owg
#     (the exact two-part P on 128-key tiles), --rounds 2; on layers 0 and 31 at 4k x 4, every output against
#     2x64x2's (--compare).
#  4. Dense causal SDPA on the same shapes (prefill_peers.py): moa / ideal per row.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
OWG=${OWG:-2x64x1owg}
OWGH=${OWGH:-2x64x1owgh}
BIG=${BIG:-2x128x1owgh}
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
s=$(date +%s); t() { echo "# $1 t=$(( $(date +%s) - s )) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
t start

if [ -z "$SKIP_CHECK" ]; then
{
  for V in $OWG $OWGH; do
    echo "== fixtures f32,f16,bf16, prefill $V"; timeout 20 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --prefill-variant $V 2>&1 | tail -8
  done
  for DT in bf16 f16; do
    echo "== vicuna7b $DT, prefill $OWG"; timeout 30 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes $DT --prefill-variant $OWG 2>&1 | tail -4
    echo "== llama3_8b $DT, prefill $OWG"; timeout 25 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes $DT --prefill-variant $OWG 2>&1 | tail -4
  done
  echo "== fixtures f32,f16,bf16, prefill $BIG"; timeout 20 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --prefill-variant $BIG 2>&1 | tail -8
  echo "== vicuna7b bf16, prefill $OWGH"; timeout 30 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 --prefill-variant $OWGH 2>&1 | tail -4
  echo "== llama3_8b bf16, prefill $OWGH"; timeout 25 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $OWGH 2>&1 | tail -4
  for V in $OWG $OWGH; do
    for tool in memcheck racecheck synccheck; do
      echo "== $tool, prefill $V"; timeout 25 compute-sanitizer --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $V 2>&1 | tail -2
    done
  done
} > "$OUT/check.txt" 2>&1
cat "$OUT/check.txt"
t check
fi

VARS=2x64x2,$OWG,$OWGH
timeout 45 ./bench_prefill $P --variants $VARS --prompts 4096 --rows 4 --reps 5 --rounds 4 --out "$OUT/ab4k.jsonl" > "$OUT/ab4k.md" 2>&1
t ab4k
timeout 60 ./bench_prefill $P --variants $VARS --prompts 16384 --rows 1 --reps 5 --rounds 4 --out "$OUT/ab16k.jsonl" > "$OUT/ab16k.md" 2>&1
t ab16k
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
cat "$OUT/ab_full.md"
t ab

V4=$VARS,2x64x1opwg,$BIG,2x128x1owg
timeout 25 ./bench_prefill $P --variants $V4 --layers-only 0,9,13,17,24,27,29,31 --prompts 16384,4096 --rows 1,4 --reps 5 --rounds 2 --out "$OUT/sub.jsonl" > "$OUT/sub.md" 2>&1
timeout 20 ./bench_prefill plans/dense_gqa.json:8 plans/dense_mha.json:32 --layers-only 0 --variants $V4 --prompts 16384,4096 --rows 1,4 --reps 5 --rounds 2 --out "$OUT/dense.jsonl" > "$OUT/dense.md" 2>&1
# Outputs against 2x64x2's on the same inputs (every 61st element; downloads are slow, so 2 layers).
timeout 20 ./bench_prefill $P --variants $V4 --layers-only 0,31 --prompts 4096 --rows 4 --reps 1 --warmups 0 --compare --out "$OUT/compare.jsonl" > "$OUT/compare.md" 2>&1
cat "$OUT/compare.md"
python3 ab.py "$OUT/sub.jsonl" --collapsed "$OUT/sub_c.jsonl" > "$OUT/sub_ab.md" 2>&1
python3 ab.py "$OUT/dense.jsonl" --collapsed "$OUT/dense_c.jsonl" > "$OUT/dense_ab.md" 2>&1
cat "$OUT/sub_ab.md" "$OUT/dense_ab.md"
t sub

cat "$OUT/ab_full.jsonl" "$OUT/dense_c.jsonl" "$OUT/sub_c.jsonl" > "$OUT/all_c.jsonl"
timeout 45 python3 prefill_peers.py "$OUT/all_c.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
cat "$OUT/peers_table.md"
t peers
