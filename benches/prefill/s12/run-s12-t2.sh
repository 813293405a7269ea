#!/bin/bash
# s12-prefill2's device call (issue 8 item 2), run from the carry folder .dev-s12-prefill2/
# (bench_prefill, cuda_check, cubins.tar.xz, plans/, ab.py, prefill_peers.py; recipe in
# benches/RESULTS.md, "Session 12, second round"). Everything it writes comes back as
# $OUT/results.tgz, repacked after every step.
#
# BASE = the bf16 default (3x64x1owghvunc); CAND = `t` (persistent blocks) with the
# consumers' loop over ring positions (3x64x1owghvunct; 529 SASS instructions per section
# against the first `t`'s 543 and BASE's 530).
#
#  1. Quick checks: fixtures bf16 (and fixture-gqa with 160 sink tokens, the loop's general
#     key offset), f16 `t` on the fixtures (a bf16 candidate that fails leaves the timing).
#  2. bf16, every layer of both plans at 4k x 4 and 16k x 1: BASE, CAND, --rounds 2.
#  3. Dense causal SDPA on the same shapes (prefill_peers.py): moa / ideal per row.
#  4. CAND: cuda_check on both upstream plans in bf16, memcheck and racecheck on
#     fixture-gqa bf16, side by side (after the timing).
#  5. Layers 0 and 31 at 4k x 4: CAND's output against BASE's (--compare; 0 expected), and
#     the dense plans' layer 0 at 4k x 4 and 16k x 1, --rounds 2.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
BASE=${BASE:-3x64x1owghvunc}
CAND=${CAND:-3x64x1owghvunct}
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
s=$(date +%s); t() { echo "# $1 t=$(( $(date +%s) - s )) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
[ -d cubins ] || { mkdir -p cubins && tar xJf cubins.tar.xz -C cubins; }
for b in bench_prefill cuda_check; do [ -x $b ] || { gunzip -f $b.gz; chmod +x $b; }; done
ls cubins | wc -l
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
t start

{
  echo "== fixtures bf16, prefill $CAND"
  timeout 20 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml plans/fixture-gqa-sink160.toml --dtypes bf16 --prefill-variant $CAND 2>&1 | tail -4
  echo "== fixtures f16, prefill 3x64x1owghnct"
  timeout 15 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml plans/fixture-gqa-sink160.toml --dtypes f16 --prefill-variant 3x64x1owghnct 2>&1 | tail -4
} > "$OUT/quick.txt" 2>&1
cat "$OUT/quick.txt"
CAND_OK=1
[ "$(awk '/^== fixtures bf16/{on=1} /^== fixtures f16/{on=0} on && /\| pass/{n++} END{print n+0}' "$OUT/quick.txt")" -ge 3 ] || { echo "# $CAND failed the fixtures: dropped" | tee -a "$OUT/times.txt"; CAND_OK=0; }
t quick

VARS=$BASE; [ $CAND_OK = 1 ] && VARS=$BASE,$CAND
timeout 25 ./bench_prefill $P --variants $VARS --prompts 4096 --rows 4 --reps 5 --rounds 2 --out "$OUT/ab4k.jsonl" > "$OUT/ab4k.md" 2>&1
t ab4k
timeout 30 ./bench_prefill $P --variants $VARS --prompts 16384 --rows 1 --reps 5 --rounds 2 --out "$OUT/ab16k.jsonl" > "$OUT/ab16k.md" 2>&1
t ab16k
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
sed -n '/^A\/B/,$p' "$OUT/ab_full.md" | head -30

timeout 25 python3 prefill_peers.py "$OUT/ab_full.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
cat "$OUT/peers_table.md"
t peers

if [ $CAND_OK = 1 ]; then
  C="--dtypes bf16 --prefill-variant $CAND"
  (timeout 40 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 $C > "$OUT/c_llama.txt" 2>&1) &
  (timeout 45 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 $C > "$OUT/c_vicuna.txt" 2>&1) &
  (timeout 40 compute-sanitizer --tool memcheck ./cuda_check plans/fixture-gqa.toml $C > "$OUT/c_memcheck.txt" 2>&1) &
  (timeout 45 compute-sanitizer --tool racecheck ./cuda_check plans/fixture-gqa.toml $C > "$OUT/c_racecheck.txt" 2>&1) &
  wait
  for f in llama vicuna memcheck racecheck; do echo "== $f bf16, prefill $CAND"; tail -2 "$OUT/c_$f.txt"; done > "$OUT/check.txt"
  cat "$OUT/check.txt"
fi
t check

timeout 12 ./bench_prefill $P --variants $VARS --layers-only 0,31 --prompts 4096 --rows 4 --reps 1 --warmups 0 --compare --out "$OUT/compare.jsonl" > "$OUT/compare.md" 2>&1
tail -6 "$OUT/compare.md"
t compare
D="plans/dense_gqa.json:8 plans/dense_mha.json:32 --layers-only 0 --variants $VARS --reps 5 --rounds 2"
timeout 10 ./bench_prefill $D --prompts 4096 --rows 4 --out "$OUT/dense4k.jsonl" > "$OUT/dense4k.md" 2>&1
timeout 12 ./bench_prefill $D --prompts 16384 --rows 1 --out "$OUT/dense16k.jsonl" > "$OUT/dense16k.md" 2>&1
python3 ab.py "$OUT/dense4k.jsonl" "$OUT/dense16k.jsonl" --collapsed "$OUT/dense_c.jsonl" > "$OUT/dense_ab.md" 2>&1
sed -n '/^Per/,$p' "$OUT/dense_ab.md"
t dense
