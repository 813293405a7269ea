#!/bin/bash
# Session 11's prefill device call (issue 8 item 2), run from the carry folder
# .dev-s11-prefill/ (bench_prefill, cuda_check, cuda_engine, cubins.tar.xz, plans/, ab.py,
# prefill_peers.py; build recipe in benches/RESULTS.md, "Session 11"). Everything it
# writes comes back as $OUT/results.tgz, repacked after every step.
#
# BASE = the bf16 default of session 10, 3x64x1owghvu; MID = the same with `n` (leaner
# consumer sections: descriptors as base + immediates, masking out of the row-max loop,
# per-warp boundary tiles) and `c` (strength-reduced producer copies); CAND = MID with `k`
# (each consumer warpgroup issues MMAs only for its own key tiles); SUBS = `n` and `c`
# alone (sub layers and the dense plans only). f16: its former default 2x64x1owg against
# F16CAND (every layer) and F16SUBS (three warpgroups; sub layers and dense plans).
#
#  1. Quick checks: cuda_check on the fixtures, bf16 for CAND, MID and SUBS, f16 for F16CAND
#     and F16SUBS (a candidate failing them leaves the timed runs).
#  2. Every layer of both plans at 4k x 4 and 16k x 1, BASE, MID and CAND, --rounds 3.
#  3. SUB_LAYERS and the dense plans: BASE, CAND, SUBS, --rounds 2.
#  4. Layers 0 and 31 at 4k x 4: outputs against BASE's (--compare; 0 expected).
#  5. CAND: cuda_check on both upstream plans in bf16, F16CAND in f16, memcheck and
#     racecheck on fixture-gqa bf16 (CAND) and f16 (F16CAND), the `_vfix` path.
#  6. f16 storage, every layer: 2x64x1owg against F16CAND, --rounds 3; F16SUBS on the sub
#     layers and the dense plans.
#  7. Dense causal SDPA on the same shapes (prefill_peers.py): moa / ideal per row.
#  8. tests/cuda_engine.rs (release test binary built with CAND's letters as the default).
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
BASE=${BASE:-3x64x1owghvu}
MID=${MID:-3x64x1owghvunc}
CAND=${CAND:-3x64x1owghvunck}
SUBS=${SUBS:-3x64x1owghvun,3x64x1owghvuc}
F16CAND=${F16CAND:-2x64x1owgnck}
F16SUBS=${F16SUBS:-3x64x1owghnck}
SUB_LAYERS=${SUB_LAYERS:-0,13,27,31}
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
s=$(date +%s); t() { echo "# $1 t=$(( $(date +%s) - s )) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
[ -d cubins ] || { mkdir -p cubins && tar xJf cubins.tar.xz -C cubins; }
for b in bench_prefill cuda_check cuda_engine; do [ -x $b ] || { gunzip -f $b.gz; chmod +x $b; }; done
ls cubins | wc -l
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
t start

{
  for V in $CAND $MID ${SUBS//,/ }; do
    echo "== fixtures bf16, prefill $V"; timeout 15 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $V 2>&1 | tail -3
  done
  for V in $F16CAND ${F16SUBS//,/ }; do
    echo "== fixtures f16, prefill $V"; timeout 15 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --dtypes f16 --prefill-variant $V 2>&1 | tail -3
  done
} > "$OUT/quick.txt" 2>&1
cat "$OUT/quick.txt"
# A candidate that fails (or hangs on) the fixtures leaves the timed runs.
ok() { awk -v v="$1" '/^== /{on = ($NF == v && $3 == "bf16,")} on && /pass/{n++} END{exit !(n >= 2)}' "$OUT/quick.txt"; }
ok $CAND || { echo "# $CAND failed the fixtures: dropped" | tee -a "$OUT/times.txt"; CAND=$MID; }
ok $MID || { echo "# $MID failed the fixtures: dropped" | tee -a "$OUT/times.txt"; MID=$BASE; CAND=$BASE; }
t quick

VARS=$(echo "$BASE,$MID,$CAND" | tr , '\n' | awk '!seen[$0]++' | paste -sd,)
timeout 40 ./bench_prefill $P --variants $VARS --prompts 4096 --rows 4 --reps 5 --rounds 3 --out "$OUT/ab4k.jsonl" > "$OUT/ab4k.md" 2>&1
t ab4k
timeout 40 ./bench_prefill $P --variants $VARS --prompts 16384 --rows 1 --reps 5 --rounds 3 --out "$OUT/ab16k.jsonl" > "$OUT/ab16k.md" 2>&1
t ab16k
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
cat "$OUT/ab_full.md"
t ab

V4=$VARS,$SUBS
timeout 35 ./bench_prefill $P --variants $V4 --layers-only $SUB_LAYERS --prompts 16384,4096 --rows 1,4 --reps 5 --rounds 2 --out "$OUT/sub.jsonl" > "$OUT/sub.md" 2>&1
timeout 20 ./bench_prefill plans/dense_gqa.json:8 plans/dense_mha.json:32 --layers-only 0 --variants $V4 --prompts 16384,4096 --rows 1,4 --reps 5 --rounds 2 --out "$OUT/dense.jsonl" > "$OUT/dense.md" 2>&1
python3 ab.py "$OUT/sub.jsonl" --collapsed "$OUT/sub_c.jsonl" > "$OUT/sub_ab.md" 2>&1
python3 ab.py "$OUT/dense.jsonl" --collapsed "$OUT/dense_c.jsonl" > "$OUT/dense_ab.md" 2>&1
cat "$OUT/sub_ab.md" "$OUT/dense_ab.md"
t sub
timeout 20 ./bench_prefill $P --variants $V4 --layers-only 0,31 --prompts 4096 --rows 4 --reps 1 --warmups 0 --compare --out "$OUT/compare.jsonl" > "$OUT/compare.md" 2>&1
cat "$OUT/compare.md"
t compare

{
  echo "== vicuna7b bf16, prefill $CAND"; timeout 20 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 --prefill-variant $CAND 2>&1 | tail -3
  echo "== llama3_8b bf16, prefill $CAND"; timeout 15 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $CAND 2>&1 | tail -3
  echo "== vicuna7b f16, prefill $F16CAND"; timeout 20 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes f16 --prefill-variant $F16CAND 2>&1 | tail -3
  echo "== llama3_8b f16, prefill $F16CAND"; timeout 15 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes f16 --prefill-variant $F16CAND 2>&1 | tail -3
  echo "== fixtures f32,bf16, prefill $CAND"; timeout 15 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --dtypes f32,bf16 --prefill-variant $CAND 2>&1 | tail -6
  for tool in memcheck racecheck; do
    echo "== $tool bf16, prefill $CAND"; timeout 20 compute-sanitizer --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $CAND 2>&1 | tail -2
  done
  echo "== racecheck f16, prefill $F16CAND"; timeout 20 compute-sanitizer --tool racecheck ./cuda_check plans/fixture-gqa.toml --dtypes f16 --prefill-variant $F16CAND 2>&1 | tail -2
  echo "== llama3_8b bf16, V x 2^[16,0,-13,0], prefill $CAND"
  timeout 15 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $CAND --v-exponents 16,0,-13,0 2>&1 | tail -3
} > "$OUT/check.txt" 2>&1
cat "$OUT/check.txt"
t check

timeout 40 ./bench_prefill $P --dtype f16 --variants 2x64x1owg,$F16CAND --prompts 4096 --rows 4 --reps 5 --rounds 3 --out "$OUT/f16_4k.jsonl" > "$OUT/f16_4k.md" 2>&1
timeout 40 ./bench_prefill $P --dtype f16 --variants 2x64x1owg,$F16CAND --prompts 16384 --rows 1 --reps 5 --rounds 3 --out "$OUT/f16_16k.jsonl" > "$OUT/f16_16k.md" 2>&1
python3 ab.py "$OUT/f16_4k.jsonl" "$OUT/f16_16k.jsonl" --collapsed "$OUT/f16_c.jsonl" > "$OUT/f16_ab.md" 2>&1
cat "$OUT/f16_ab.md"
FV=2x64x1owg,$F16CAND,$F16SUBS
timeout 25 ./bench_prefill $P --dtype f16 --variants $FV --layers-only $SUB_LAYERS --prompts 16384,4096 --rows 1,4 --reps 5 --rounds 2 --out "$OUT/f16_sub.jsonl" > "$OUT/f16_sub.md" 2>&1
timeout 15 ./bench_prefill plans/dense_gqa.json:8 plans/dense_mha.json:32 --dtype f16 --layers-only 0 --variants $FV --prompts 16384,4096 --rows 1,4 --reps 5 --rounds 2 --out "$OUT/f16_dense.jsonl" > "$OUT/f16_dense.md" 2>&1
python3 ab.py "$OUT/f16_sub.jsonl" "$OUT/f16_dense.jsonl" --collapsed "$OUT/f16_sub_c.jsonl" > "$OUT/f16_sub_ab.md" 2>&1
cat "$OUT/f16_sub_ab.md"
t f16

cat "$OUT/ab_full.jsonl" "$OUT/dense_c.jsonl" > "$OUT/all_c.jsonl"
timeout 40 python3 prefill_peers.py "$OUT/all_c.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
cat "$OUT/peers_table.md"
t peers

# The engine's tests from the repository root (their fixtures), with CAND's letters as
# the default the test binary was built with; unset MOA_CUBIN_DIR: the engine compiles.
(cd "$(dirname "$PWD")" && MOA_CUBIN_DIR= timeout ${ENGINE_T:-100} ./.dev-s11-prefill/cuda_engine --test-threads 1 > "$OUT/engine.txt" 2>&1)
grep -E "^test |test result" "$OUT/engine.txt" | tail -20
t engine
