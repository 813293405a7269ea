#!/bin/bash
# s15-prefill's second device call, run from the carry folder .dev-s15-prefill/ (this
# call's bench_prefill and cuda_check, cubins2.tar.xz from build-cubins2.sh, plans/, ab.py,
# prefill_peers.py). Everything it writes comes back as $OUT/results.tgz.
#
# DEF = 3x64x1owghvunca (main's bf16 default), NEW = 3x64x1owghvuncaf (`f` with its length
# rule: query tiles from the row's end where the longest row is at most 8192 tokens);
# DEF16 = 3x64x1owghnc, NEW16 = 3x64x1owghncf (f16).
# Predictions: NEW / DEF 0.966-0.971 at 4k x 4 (the first call's `f`), 0.985-0.99 at
# 8k x 2 (tiles counted: the partial tile there has 128 of 192 rows), 1.00 at 16k x 1
# (the rule keeps the tiles from the row's start; only a branch at the block's start);
# f16 alike. Outputs equal DEF's (--compare, max diff 0).
#  1. Quick checks: fixtures bf16 (NEW and its `t` form) and f16 (NEW16); a failure stops.
#  2. --compare, layers 0, 27, 31 of both plans at 4k x 4, 8k x 2, 16k x 1.
#  3. A/B DEF vs NEW, every layer of both plans, 4k x 4, 8k x 2 (3 rounds), 16k x 1 (2);
#     f16 at 4k x 4 and 8k x 2 (2 rounds); dense causal SDPA on the 8k x 2 rows.
#  4. Side by side: cuda_check of NEW (bf16) and NEW16 (f16) on both upstream plans,
#     memcheck and racecheck of NEW on fixture-gqa bf16.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins2
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
DEF=3x64x1owghvunca
NEW=3x64x1owghvuncaf
DEF16=3x64x1owghnc
NEW16=3x64x1owghncf
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
END=${END:-115}
s=$(date +%s); el() { echo $(( $(date +%s) - s )); }; t() { echo "# $1 t=$(el) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
[ -d cubins2 ] || { mkdir -p cubins2 && tar xJf cubins2.tar.xz -C cubins2; }
for b in bench_prefill cuda_check; do gunzip -f $b.gz 2>/dev/null; chmod +x $b; done
ls cubins2 | wc -l
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
t start
FX="plans/fixture-mha.toml plans/fixture-gqa.toml plans/fixture-gqa-sink160.toml"
{
for V in $NEW 3x64x1owghvunctf; do echo "== fixtures bf16, prefill $V"; timeout 15 ./cuda_check $FX --dtypes bf16 --prefill-variant $V 2>&1 | tail -4; done
echo "== fixtures f16, prefill $NEW16"; timeout 15 ./cuda_check $FX --dtypes f16 --prefill-variant $NEW16 2>&1 | tail -4
} > "$OUT/quick.txt" 2>&1
cat "$OUT/quick.txt"
[ "$(grep -c '| pass' "$OUT/quick.txt")" -ge 9 ] || { echo "# the fixtures failed: stop" | tee -a "$OUT/times.txt"; t quick; exit 1; }
t quick
for pr in "4096 --rows 4" "8192 --rows 2" "16384 --rows 1"; do
  timeout 20 ./bench_prefill $P --variants $DEF,$NEW --layers-only 0,27,31 --prompts $pr --reps 2 --compare --out "$OUT/compare_${pr%% *}.jsonl" > /dev/null 2>&1
done
cat "$OUT"/compare_*.jsonl | python3 -c "
import json, sys
for l in sys.stdin:
    r = json.loads(l); print(r['plan'], r['prompt'], r['rows'], 'l%02d' % r['layer'], r['variant'], 'max diff', r.get('max_diff_vs_first'))" > "$OUT/compare.md"
grep -c "max diff 0.0" "$OUT/compare.md"; grep -v "max diff 0.0\|max diff None" "$OUT/compare.md"
t compare
timeout 40 ./bench_prefill $P --variants $DEF,$NEW --prompts 4096 --rows 4 --reps 5 --rounds 3 --out "$OUT/ab4k.jsonl" > "$OUT/ab.log" 2>&1
timeout 40 ./bench_prefill $P --variants $DEF,$NEW --prompts 8192 --rows 2 --reps 5 --rounds 3 --out "$OUT/ab8k.jsonl" >> "$OUT/ab.log" 2>&1
timeout 40 ./bench_prefill $P --variants $DEF,$NEW --prompts 16384 --rows 1 --reps 5 --rounds 2 --out "$OUT/ab16k.jsonl" >> "$OUT/ab.log" 2>&1
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab8k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
sed -n '/^A\/B/,$p' "$OUT/ab_full.md" | head -16
t ab
for pr in "4096 --rows 4" "8192 --rows 2"; do
  [ "$(el)" -lt $((END - 75)) ] && timeout 20 ./bench_prefill $P --dtype f16 --variants $DEF16,$NEW16 --prompts $pr --reps 5 --rounds 2 --out "$OUT/f16_${pr%% *}.jsonl" >> "$OUT/f16.log" 2>&1
done
python3 ab.py "$OUT"/f16_*.jsonl > "$OUT/f16_ab.md" 2>&1
sed -n '/^Per configuration/,$p' "$OUT/f16_ab.md" | head -12
t f16
grep '"prompt":8192' "$OUT/ab_full.jsonl" > "$OUT/ab8k_collapsed.jsonl"
[ "$(el)" -lt $((END - 60)) ] && timeout 25 python3 prefill_peers.py "$OUT/ab8k_collapsed.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
cat "$OUT/peers_table.md"
t peers
C="--prefill-variant"
CT=$(( END - $(el) )); [ $CT -gt 60 ] && CT=60; [ $CT -lt 45 ] && CT=45
(timeout $CT ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 $C $NEW > "$OUT/c_llama.txt" 2>&1) &
(timeout $CT ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 $C $NEW > "$OUT/c_vicuna.txt" 2>&1) &
(timeout $CT ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes f16 $C $NEW16 > "$OUT/c_llama16.txt" 2>&1) &
(timeout $CT ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes f16 $C $NEW16 > "$OUT/c_vicuna16.txt" 2>&1) &
(timeout $CT compute-sanitizer --tool memcheck ./cuda_check plans/fixture-gqa.toml plans/fixture-gqa-sink160.toml --dtypes bf16 $C $NEW > "$OUT/c_memcheck.txt" 2>&1) &
(timeout $CT compute-sanitizer --tool racecheck ./cuda_check plans/fixture-gqa.toml --dtypes bf16 $C $NEW > "$OUT/c_racecheck.txt" 2>&1) &
wait
for f in llama vicuna llama16 vicuna16 memcheck racecheck; do echo "== $f"; tail -3 "$OUT/c_$f.txt"; done > "$OUT/check.txt"
cat "$OUT/check.txt"
t check
