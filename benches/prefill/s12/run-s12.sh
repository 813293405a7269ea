#!/bin/bash
# Session 12's prefill device call (issue 8 item 2), run from the carry folder
# .dev-s12-prefill/ (bench_prefill, cuda_check, cuda_engine, cubins.tar.xz, plans/, ab.py,
# prefill_peers.py; recipe in benches/RESULTS.md, "Session 12"). Everything it writes comes
# back as $OUT/results.tgz, repacked after every step.
#
# BASE = the bf16 default of session 11 (3x64x1owghvunc); CAND = the same with `t`
# (persistent blocks: one per SM, query tiles from a counter, the next tile's Q and K/V
# loaded under the current one's last sections). f16: its default 2x64x1owgnc against
# three warpgroups (3x64x1owghnc) and three with `t` (3x64x1owghnct).
#
#  1. Quick checks on the fixtures (a candidate that fails or hangs leaves the timed runs).
#  2. bf16, every layer of both plans at 4k x 4 and 16k x 1: BASE, CAND, --rounds 3.
#  3. Layers 0 and 31 at 4k x 4: CAND's output against BASE's (--compare; 0 expected).
#  4. The dense plans (layer 0, 4k and 16k x 1 and 4): BASE, CAND, --rounds 2.
#  5. Dense causal SDPA on the same shapes (prefill_peers.py): moa / ideal per row.
#  6. CAND: cuda_check on both upstream plans in bf16, the `_vfix` path, memcheck and
#     racecheck on fixture-gqa bf16.
#  7. tests/cuda_engine.rs (release test binary built with `t` on by default).
#  8. f16, every layer: F16 variants, --rounds 2; then cuda_check of the f16 candidates
#     on both plans.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
BASE=${BASE:-3x64x1owghvunc}
CAND=${CAND:-3x64x1owghvunct}
F16=${F16:-2x64x1owgnc,3x64x1owghnc,3x64x1owghnct}
F16C2=${F16C2:-2x64x1owgnct}
F16C3=${F16C3:-3x64x1owghnct}
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
s=$(date +%s); t() { echo "# $1 t=$(( $(date +%s) - s )) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
[ -d cubins ] || { mkdir -p cubins && tar xJf cubins.tar.xz -C cubins; }
for b in bench_prefill cuda_check cuda_engine; do [ -x $b ] || { gunzip -f $b.gz; chmod +x $b; }; done
ls cubins | wc -l
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
t start

{
  echo "== fixtures bf16, prefill $CAND"; timeout 20 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $CAND 2>&1 | tail -3
  for V in $F16C2 $F16C3; do
    echo "== fixtures f16, prefill $V"; timeout 15 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --dtypes f16 --prefill-variant $V 2>&1 | tail -3
  done
} > "$OUT/quick.txt" 2>&1
cat "$OUT/quick.txt"
ok() { awk -v v="$1" -v d="$2" '/^== /{on = ($NF == v && $3 == d ",")} on && /pass/{n++} END{exit !(n >= 2)}' "$OUT/quick.txt"; }
CAND_OK=1; ok $CAND bf16 || { echo "# $CAND failed the fixtures: dropped" | tee -a "$OUT/times.txt"; CAND_OK=0; }
ok $F16C3 f16 || { echo "# $F16C3 failed the fixtures: dropped" | tee -a "$OUT/times.txt"; F16=2x64x1owgnc,3x64x1owghnc; }
t quick

VARS=$BASE; [ $CAND_OK = 1 ] && VARS=$BASE,$CAND
timeout 40 ./bench_prefill $P --variants $VARS --prompts 4096 --rows 4 --reps 5 --rounds 3 --out "$OUT/ab4k.jsonl" > "$OUT/ab4k.md" 2>&1
t ab4k
timeout 50 ./bench_prefill $P --variants $VARS --prompts 16384 --rows 1 --reps 5 --rounds 3 --out "$OUT/ab16k.jsonl" > "$OUT/ab16k.md" 2>&1
t ab16k
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
sed -n '/^A\/B/,$p' "$OUT/ab_full.md" | head -30
timeout 20 ./bench_prefill $P --variants $VARS --layers-only 0,31 --prompts 4096 --rows 4 --reps 1 --warmups 0 --compare --out "$OUT/compare.jsonl" > "$OUT/compare.md" 2>&1
cat "$OUT/compare.md"
timeout 30 ./bench_prefill plans/dense_gqa.json:8 plans/dense_mha.json:32 --layers-only 0 --variants $VARS --prompts 16384,4096 --rows 1,4 --reps 5 --rounds 2 --out "$OUT/dense.jsonl" > "$OUT/dense.md" 2>&1
python3 ab.py "$OUT/dense.jsonl" --collapsed "$OUT/dense_c.jsonl" > "$OUT/dense_ab.md" 2>&1
sed -n '/^Per/,$p' "$OUT/dense_ab.md"
t ab

cat "$OUT/ab_full.jsonl" "$OUT/dense_c.jsonl" > "$OUT/all_c.jsonl"
timeout 40 python3 prefill_peers.py "$OUT/all_c.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
cat "$OUT/peers_table.md"
t peers

if [ $CAND_OK = 1 ]; then
{
  echo "== llama3_8b bf16, prefill $CAND"; timeout 25 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $CAND 2>&1 | tail -1
  echo "== vicuna7b bf16, prefill $CAND"; timeout 40 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 --prefill-variant $CAND 2>&1 | tail -1
  echo "== llama3_8b bf16, V x 2^[16,0,-13,0], prefill $CAND"
  timeout 20 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $CAND --v-exponents 16,0,-13,0 2>&1 | tail -1
  for tool in memcheck racecheck; do
    echo "== $tool bf16, prefill $CAND"; timeout 25 compute-sanitizer --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $CAND 2>&1 | tail -2
  done
} > "$OUT/check.txt" 2>&1
cat "$OUT/check.txt"
fi
t check

# The engine's tests from the repository root (their fixtures), `t` on by default in the
# binary; unset MOA_CUBIN_DIR: the engine compiles through the device's NVRTC. The test
# that fetches a GGUF is skipped (no network on the device).
(cd "$(dirname "$PWD")" && MOA_CUBIN_DIR= timeout ${ENGINE_T:-60} ./.dev-s12-prefill/cuda_engine --test-threads 1 --skip real_smollm2 > "$OUT/engine.txt" 2>&1)
grep -E "^test |test result" "$OUT/engine.txt" | tail -20
t engine

timeout 40 ./bench_prefill $P --dtype f16 --variants $F16 --prompts 4096 --rows 4 --reps 5 --rounds 2 --out "$OUT/f16_4k.jsonl" > "$OUT/f16_4k.md" 2>&1
timeout 50 ./bench_prefill $P --dtype f16 --variants $F16 --prompts 16384 --rows 1 --reps 5 --rounds 2 --out "$OUT/f16_16k.jsonl" > "$OUT/f16_16k.md" 2>&1
python3 ab.py "$OUT/f16_4k.jsonl" "$OUT/f16_16k.jsonl" --collapsed "$OUT/f16_c.jsonl" > "$OUT/f16_ab.md" 2>&1
sed -n '/^A\/B/,$p' "$OUT/f16_ab.md" | head -20
t f16
{
  echo "== llama3_8b f16, prefill $F16C3"; timeout 25 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes f16 --prefill-variant $F16C3 2>&1 | tail -1
  echo "== llama3_8b f16, prefill $F16C2"; timeout 25 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes f16 --prefill-variant $F16C2 2>&1 | tail -1
  echo "== racecheck f16, prefill $F16C3"; timeout 20 compute-sanitizer --tool racecheck ./cuda_check plans/fixture-gqa.toml --dtypes f16 --prefill-variant $F16C3 2>&1 | tail -2
  echo "== vicuna7b f16, prefill $F16C3"; timeout ${VF16_T:-60} ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes f16 --prefill-variant $F16C3 2>&1 | tail -1
} > "$OUT/check_f16.txt" 2>&1
cat "$OUT/check_f16.txt"
t check_f16

