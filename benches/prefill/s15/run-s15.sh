#!/bin/bash
# s15-prefill's device call (issue 8 item 2), run from the carry folder .dev-s15-prefill/
# (bench_prefill and cuda_check of this branch, cubins.tar.xz from build-cubins.sh,
# plans/, ab.py, prefill_peers.py; recipe in benches/RESULTS.md, "Session 15"). Everything
# it writes comes back as $OUT/results.tgz (rewritten after every step).
#
# DEF = main's bf16 default 3x64x1owghvunca; F = + `f` (query tiles counted from the row's
# end: the partial tile is the row's first, shortest band); L = + `l` (blocks launched in
# L2 sections of KV head-rows, longest band first within a section); FL = both.
# Predictions (before the call; the fit of s13's rows, tiles per block counted per layer,
# a list-scheduling simulation of the launch order):
#   F:  near-dense 4k x 4 layers 0.955-0.96, narrow 4k 0.97-0.99, 16k x 1 0.985-0.99.
#   L:  Vicuna-7B (MHA) 0.88-0.93 at 4k x 4 and 16k x 1 (its fitted cost per tile is
#       1.62 us against Llama-3-8B's 1.43: K/V reread from DRAM when the blocks in flight
#       are 128 different heads); Llama-3-8B (GQA, 4 heads share a K/V) 0.97-1.00.
#   FL: about the product; Vicuna-7B's near-dense 4k layers 1.44 -> ~1.25x dense SDPA.
#   TFL (persistent blocks on every layer, with f and l): against FL 0.98-1.0 at 4k x 4,
#       1.01-1.05 on the wide layers at 16k x 1 (session 12: t saves ~1.5 us per query
#       tile and costs ~2% per key tile).
#
#  1. Quick checks: fixtures bf16 (DEF, FL, and `t` + `fl`) and f16 (fl); a failure stops.
#  2. --compare at full size: layers 0, 27, 31 of both plans at 4k x 4 and 16k x 1, the
#     four bf16 forms against DEF (same arithmetic per row: max diff 0 expected).
#  3. bf16 A/B (DEF, F, L, FL, TFL), every layer of both plans, 4k x 4 and 16k x 1, 3 rounds (A/A from them);
#     f16 A/B DEF16 vs FL16, 2 rounds; dense plans layer 0.
#  4. Dense causal SDPA on the same shapes (moa / ideal, moa / dense per row).
#  5. Side by side: cuda_check of FL on both plans in bf16 and f16, memcheck and racecheck
#     of FL (and its `t` form) on fixture-gqa bf16.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
DEF=3x64x1owghvunca
F=3x64x1owghvuncaf
L=3x64x1owghvuncal
FL=3x64x1owghvuncafl
TFL=3x64x1owghvunctfl
DEF16=3x64x1owghnc
FL16=3x64x1owghncfl
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
END=${END:-270}   # seconds: a step that would start past its share of this is skipped
s=$(date +%s); el() { echo $(( $(date +%s) - s )); }; t() { echo "# $1 t=$(( $(date +%s) - s )) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
[ -d cubins ] || { mkdir -p cubins && tar xJf cubins.tar.xz -C cubins; }
for b in bench_prefill cuda_check; do [ -x $b ] || { gunzip -f $b.gz; chmod +x $b; }; done
ls cubins | wc -l
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
t start

FX="plans/fixture-mha.toml plans/fixture-gqa.toml plans/fixture-gqa-sink160.toml"
{
for V in $DEF $FL 3x64x1owghvunctfl; do
  echo "== fixtures bf16, prefill $V"
  timeout 15 ./cuda_check $FX --dtypes bf16 --prefill-variant $V 2>&1 | tail -4
done
echo "== fixtures f16, prefill $FL16"
timeout 15 ./cuda_check $FX --dtypes f16 --prefill-variant $FL16 2>&1 | tail -4
} > "$OUT/quick.txt" 2>&1
cat "$OUT/quick.txt"
[ "$(grep -c '| pass' "$OUT/quick.txt")" -ge 12 ] || { echo "# the fixtures failed: stop" | tee -a "$OUT/times.txt"; t quick; exit 1; }
t quick

for pr in "4096 --rows 4" "16384 --rows 1"; do
  timeout 25 ./bench_prefill $P --variants $DEF,$F,$L,$FL --layers-only 0,27,31 --prompts $pr --reps 2 --compare --out "$OUT/compare_${pr%% *}.jsonl" > /dev/null 2>&1
done
python3 - "$OUT" > "$OUT/compare.md" 2>&1 <<'PY'
import glob, json, os, sys
for f in sorted(glob.glob(os.path.join(sys.argv[1], "compare_*.jsonl"))):
    for l in open(f):
        r = json.loads(l)
        print(r["plan"], r["prompt"], r["rows"], "l%02d" % r["layer"], r["variant"], "max diff", r.get("max_diff_vs_first"))
PY
cat "$OUT/compare.md"
t compare

timeout 70 ./bench_prefill $P --variants $DEF,$F,$L,$FL,$TFL --prompts 4096 --rows 4 --reps 5 --rounds 3 --out "$OUT/ab4k.jsonl" > "$OUT/ab4k.log" 2>&1
t ab4k
timeout 70 ./bench_prefill $P --variants $DEF,$F,$L,$FL,$TFL --prompts 16384 --rows 1 --reps 5 --rounds 3 --out "$OUT/ab16k.jsonl" > "$OUT/ab16k.log" 2>&1
t ab16k
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
sed -n '/^A\/B/,$p' "$OUT/ab_full.md" | head -24
[ "$(el)" -lt $((END - 150)) ] && timeout 30 ./bench_prefill $P --dtype f16 --variants $DEF16,$FL16 --prompts 4096 --rows 4 --reps 5 --rounds 2 --out "$OUT/f16_4k.jsonl" > "$OUT/f16.log" 2>&1
[ "$(el)" -lt $((END - 140)) ] && timeout 30 ./bench_prefill $P --dtype f16 --variants $DEF16,$FL16 --prompts 16384 --rows 1 --reps 5 --rounds 2 --out "$OUT/f16_16k.jsonl" >> "$OUT/f16.log" 2>&1
python3 ab.py "$OUT/f16_4k.jsonl" "$OUT/f16_16k.jsonl" > "$OUT/f16_ab.md" 2>&1
t f16
[ "$(el)" -lt $((END - 130)) ] && timeout 25 ./bench_prefill plans/dense_gqa.json:8 plans/dense_mha.json:32 --layers-only 0 --variants $DEF,$FL --prompts 4096,16384 --rows 1,4 --reps 5 --rounds 2 --out "$OUT/dense.jsonl" > "$OUT/dense.log" 2>&1
python3 ab.py "$OUT/dense.jsonl" > "$OUT/dense_ab.md" 2>&1
t dense
timeout 45 python3 prefill_peers.py "$OUT/ab_full.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
cat "$OUT/peers_table.md"
t peers

C="--prefill-variant"
CT=$(( END - $(el) )); [ $CT -gt 70 ] && CT=70; [ $CT -lt 10 ] && CT=10
(timeout $CT ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 $C $FL > "$OUT/c_llama.txt" 2>&1) &
(timeout $CT ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 $C $FL > "$OUT/c_vicuna.txt" 2>&1) &
(timeout $CT ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes f16 $C $FL16 > "$OUT/c_llama16.txt" 2>&1) &
(timeout $CT ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes f16 $C $FL16 > "$OUT/c_vicuna16.txt" 2>&1) &
(timeout $CT compute-sanitizer --tool memcheck ./cuda_check plans/fixture-gqa.toml plans/fixture-gqa-sink160.toml --dtypes bf16 $C $FL > "$OUT/c_memcheck.txt" 2>&1) &
(timeout $CT compute-sanitizer --tool racecheck ./cuda_check plans/fixture-gqa.toml --dtypes bf16 $C $FL > "$OUT/c_racecheck.txt" 2>&1) &
wait
for f in llama vicuna llama16 vicuna16 memcheck racecheck; do echo "== $f"; tail -3 "$OUT/c_$f.txt"; done > "$OUT/check.txt"
cat "$OUT/check.txt"
t check
