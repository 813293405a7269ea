#!/bin/bash
# s17-prefill's second device call (carry .dev-s17-prefill/ as call 1's, with the f16 cubins of
# m and i and pick.py). An A/B of DEF, DEF + m and DEF + i (below), then the checks a new
# default needs on the one with the lower geometric mean (pick.py): cuda_check of both
# upstream plans in bf16 and f16, compute-sanitizer memcheck on fixture-gqa and
# fixture-gqa-sink160 and racecheck on fixture-gqa (its narrow layers run the `t` form).
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
DEF=3x64x1owghvuncaf
WIN=${WIN:-${DEF}m}
WIN16=${WIN16:-3x64x1owghncfm}
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
END=${END:-150}
s=$(date +%s); el() { echo $(( $(date +%s) - s )); }; t() { echo "# $1 t=$(el) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
rm -rf cubins; mkdir -p cubins && tar xJf cubins.tar.xz -C cubins
for b in bench_prefill cuda_check; do gunzip -f $b.gz 2>/dev/null; chmod +x $b; done
ls cubins | wc -l
t start
# 1. A/B of DEF, m and i, kernel with the `u` pre-pass (call 1's --cache-write runs printed
#    nothing within their 45 / 55 s), every layer of both plans, 4k x 4 (4 rounds) and
#    16k x 1 (2 rounds), --abba. Predicted from call 1's ncu of l15: Vicuna-7B 4k x 4
#    near-dense layers 0.94-0.95 (m, i), narrow ones ~0.98; Vicuna-7B 16k x 1 ~0.99 (m),
#    0.985 (i); Llama-3-8B 0.99-1.00.
VS=$DEF,${DEF}m,${DEF}i
timeout 40 ./bench_prefill $P --variants $VS --abba --prompts 4096 --rows 4 --reps 5 --rounds 4 --out "$OUT/ab4k.jsonl" > "$OUT/ab.log" 2>&1
t ab4k
timeout 50 ./bench_prefill $P --variants $VS --abba --prompts 16384 --rows 1 --reps 5 --rounds 2 --out "$OUT/ab16k.jsonl" >> "$OUT/ab.log" 2>&1
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
sed -n '/^A\/B/,$p' "$OUT/ab_full.md" | head -24
python3 pick.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" > "$OUT/pick.txt" 2>&1; cat "$OUT/pick.txt"
t ab
timeout 25 python3 prefill_peers.py "$OUT/ab_full.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
python3 ideal.py "$OUT/ab_full.jsonl" "$OUT/peers.jsonl" > "$OUT/ideal.md" 2>&1
cat "$OUT/ideal.md"
t peers
W=$(tail -1 "$OUT/pick.txt")
case "$W" in *m) WIN=${DEF}m; WIN16=3x64x1owghncfm;; *i) WIN=${DEF}i; WIN16=3x64x1owghncfi;; esac
echo "# checks of $WIN / $WIN16" | tee -a "$OUT/times.txt"
C="--prefill-variant"
CT=60
(timeout $CT ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 $C $WIN > "$OUT/c_llama.txt" 2>&1) &
(timeout $CT ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 $C $WIN > "$OUT/c_vicuna.txt" 2>&1) &
(timeout $CT ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes f16 $C $WIN16 > "$OUT/c_llama16.txt" 2>&1) &
(timeout $CT ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes f16 $C $WIN16 > "$OUT/c_vicuna16.txt" 2>&1) &
(timeout $CT compute-sanitizer --tool memcheck ./cuda_check plans/fixture-gqa.toml plans/fixture-gqa-sink160.toml --dtypes bf16 $C $WIN > "$OUT/c_memcheck.txt" 2>&1) &
(timeout $CT compute-sanitizer --tool racecheck ./cuda_check plans/fixture-gqa.toml --dtypes bf16 $C $WIN > "$OUT/c_racecheck.txt" 2>&1) &
wait
for f in llama vicuna llama16 vicuna16 memcheck racecheck; do echo "== $f"; tail -4 "$OUT/c_$f.txt"; done > "$OUT/check.txt"
cat "$OUT/check.txt"
t check
