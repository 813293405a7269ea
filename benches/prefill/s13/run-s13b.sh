#!/bin/bash
# s13-prefill's second device call (issue 8 item 2), run from the carry folder
# .dev-s13-prefill/ (bench_prefill and cuda_check of this call's commit, bench_prefill_c1
# (the first call's), bench_prefill_old (main's), cubins.tar.xz (this call's),
# cubins-c1.tar.xz, cubins-old.tar.xz, plans/, ab.py, prefill_peers.py; recipe in
# benches/RESULTS.md, "Session 13"). Everything it writes comes back as $OUT/results.tgz.
#
# NEW = the pre-pass kernels looping over 64-token groups on about one wave of blocks
# (1024 in all), C1 = the first call's (every load in flight, one block per 64 tokens),
# OLD = main's (one load in flight, one block per 64 tokens). DEF = the new default
# 3x64x1owghvunca; BASE = 3x64x1owghvunc.
#
#  1. Quick checks: fixtures bf16, DEF and `t` everywhere (a failure stops the call); the
#     pre-pass's f16 copy and maxima against the host at 4k x 4 and 16k x 1.
#  2. The pre-pass three ways, layers 27 and 31 of both plans, 4k x 4 and 16k x 1,
#     interleaved OLD, C1, NEW, twice.
#  3. NEW: BASE vs DEF on every layer of both plans at 4k x 4 and 16k x 1 (2 rounds), then
#     dense causal SDPA on the same shapes (moa / ideal per row).
#  4. Side by side: cuda_check of DEF on both plans in bf16, of the `_vfix` path
#     (--v-exponents), memcheck of DEF on fixture-gqa and its 160-sink form.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
BASE=3x64x1owghvunc
DEF=3x64x1owghvunca
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
s=$(date +%s); t() { echo "# $1 t=$(( $(date +%s) - s )) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
for c in cubins cubins-c1 cubins-old; do [ -d $c ] || { mkdir -p $c && tar xJf $c.tar.xz -C $c; }; done
for b in bench_prefill bench_prefill_c1 bench_prefill_old cuda_check; do [ -x $b ] || { gunzip -f $b.gz; chmod +x $b; }; done
ls cubins | wc -l; ls cubins-c1 | wc -l; ls cubins-old | wc -l
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
t start

FX="plans/fixture-mha.toml plans/fixture-gqa.toml plans/fixture-gqa-sink160.toml"
for V in $DEF 3x64x1owghvunct; do
  echo "== fixtures bf16, prefill $V"
  timeout 15 ./cuda_check $FX --dtypes bf16 --prefill-variant $V 2>&1 | tail -4
done > "$OUT/quick.txt" 2>&1
cat "$OUT/quick.txt"
[ "$(grep -c '| pass' "$OUT/quick.txt")" -ge 6 ] || { echo "# the fixtures failed: stop" | tee -a "$OUT/times.txt"; t quick; exit 1; }
# The pre-pass at full size (its kernels loop over several 64-token groups per block
# there, which cuda_check's small cases never reach): f16 copy and maxima vs the host.
for pr in "4096 --rows 4" "16384 --rows 1"; do
  timeout 15 ./bench_prefill $P --variants $DEF --layers-only 27 --prompts $pr --reps 1 --check-prepass --out /dev/null 2>&1 | grep -i "pre-pass\|error"
done > "$OUT/check_prepass.txt"
cat "$OUT/check_prepass.txt"
t quick

L="--layers-only 27,31 --variants $BASE --reps 5"
for r in 0 1; do
  for pr in "4096 --rows 4" "16384 --rows 1"; do
    set -- $pr; p=$1
    MOA_CUBIN_DIR=$PWD/cubins-old timeout 10 ./bench_prefill_old $P $L --prompts $pr --out "$OUT/pre_old_${p}_$r.jsonl" > /dev/null 2>&1
    MOA_CUBIN_DIR=$PWD/cubins-c1 timeout 10 ./bench_prefill_c1 $P $L --prompts $pr --out "$OUT/pre_c1_${p}_$r.jsonl" > /dev/null 2>&1
    timeout 10 ./bench_prefill $P $L --prompts $pr --out "$OUT/pre_new_${p}_$r.jsonl" > /dev/null 2>&1
  done
done
python3 - "$OUT" > "$OUT/prepass.txt" 2>&1 <<'PY'
import glob, json, os, statistics as st, sys
from collections import defaultdict
g = defaultdict(list)
for f in glob.glob(os.path.join(sys.argv[1], "pre_*.jsonl")):
    form = os.path.basename(f).split("_")[1]
    for l in open(f):
        r = json.loads(l)
        if r.get("prepass_ms") is not None:
            g[(r["plan"], r["prompt"], r["rows"], form)].append(r["prepass_ms"])
for k in sorted(g):
    v = g[k]
    print(*k, "pre-pass median %.4f ms (n %d, min %.4f, max %.4f)" % (st.median(v), len(v), min(v), max(v)))
PY
cat "$OUT/prepass.txt"
t prepass

timeout 40 ./bench_prefill $P --variants $BASE,$DEF --prompts 4096 --rows 4 --reps 5 --rounds 2 --out "$OUT/ab4k.jsonl" > "$OUT/ab4k.md" 2>&1
t ab4k
timeout 45 ./bench_prefill $P --variants $BASE,$DEF --prompts 16384 --rows 1 --reps 5 --rounds 2 --out "$OUT/ab16k.jsonl" > "$OUT/ab16k.md" 2>&1
t ab16k
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
sed -n '/^A\/B/,$p' "$OUT/ab_full.md" | head -20
timeout 25 python3 prefill_peers.py "$OUT/ab_full.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
cat "$OUT/peers_table.md"
t peers

C="--dtypes bf16 --prefill-variant $DEF"
(timeout 45 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 $C > "$OUT/c_llama.txt" 2>&1) &
(timeout 55 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 $C > "$OUT/c_vicuna.txt" 2>&1) &
(timeout 40 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 $C --v-exponents 16,0,-13,0 > "$OUT/c_vfix.txt" 2>&1) &
(timeout 40 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 $C --v-exponents 16,0,-13,0 > "$OUT/c_vfix_mha.txt" 2>&1) &
(timeout 40 compute-sanitizer --tool memcheck ./cuda_check plans/fixture-gqa.toml plans/fixture-gqa-sink160.toml $C > "$OUT/c_memcheck.txt" 2>&1) &
wait
for f in llama vicuna vfix vfix_mha memcheck; do echo "== $f"; tail -3 "$OUT/c_$f.txt"; done > "$OUT/check.txt"
cat "$OUT/check.txt"
t check
