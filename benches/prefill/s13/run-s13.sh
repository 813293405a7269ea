#!/bin/bash
# s13-prefill's device call (issue 8 item 2), run from the carry folder .dev-s13-prefill/
# (bench_prefill, bench_prefill_old (main's build), cuda_check, cubins.tar.xz (this
# branch), cubins-old.tar.xz (main's BASE on 4 layers), plans/, ab.py, prefill_peers.py;
# recipe in benches/RESULTS.md, "Session 13"). Everything it writes comes back as
# $OUT/results.tgz, repacked after every step.
#
# BASE = the bf16 default 3x64x1owghvunc, its pre-pass with every load of a thread in
# flight at once (this branch); CAND = 3x64x1owghvunca (`t`, persistent blocks, on the
# layers whose mean span at 16k tokens is at most 0.4 of them; BASE's kernel elsewhere).
#
#  1. Quick checks: fixtures bf16 for BASE, CAND and `t` everywhere (the new pre-pass under
#     both forms); a candidate that fails leaves the timing.
#  2. Main's build (OLD pre-pass) on layers 27, 31 at 4k x 4, then BASE vs CAND on
#     every layer of both plans at 4k x 4 (2 rounds), OLD at 16k x 1, BASE vs CAND at 16k.
#  3. Dense causal SDPA on the same shapes (prefill_peers.py): moa / ideal per row.
#  4. Side by side: cuda_check of CAND on both plans in bf16, of the `_vfix` path
#     (--v-exponents), memcheck of CAND on fixture-gqa and its 160-sink form, racecheck
#     of CAND on fixture-gqa bf16 (f16 sources are unchanged on this branch).
#  5. Layers 0, 27, 31 at 4k x 4: CAND's output against BASE's (--compare; 0 expected).
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
BASE=${BASE:-3x64x1owghvunc}
CAND=${CAND:-3x64x1owghvunca}
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
s=$(date +%s); t() { echo "# $1 t=$(( $(date +%s) - s )) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
[ -d cubins ] || { mkdir -p cubins && tar xJf cubins.tar.xz -C cubins; }
[ -d cubins-old ] || { mkdir -p cubins-old && tar xJf cubins-old.tar.xz -C cubins-old; }
for b in bench_prefill bench_prefill_old cuda_check; do [ -x $b ] || { gunzip -f $b.gz; chmod +x $b; }; done
ls cubins | wc -l; ls cubins-old | wc -l
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
t start

FX="plans/fixture-mha.toml plans/fixture-gqa.toml plans/fixture-gqa-sink160.toml"
for V in $BASE $CAND 3x64x1owghvunct; do
  echo "== fixtures bf16, prefill $V"
  timeout 15 ./cuda_check $FX --dtypes bf16 --prefill-variant $V 2>&1 | tail -4
done > "$OUT/quick.txt" 2>&1
cat "$OUT/quick.txt"
npass() { awk -v v="$1" '$0 ~ "^== fixtures bf16, prefill "v"$" {on=1; next} /^== /{on=0} on && /\| pass/{n++} END{print n+0}' "$OUT/quick.txt"; }
VARS=$BASE; [ "$(npass $CAND)" -ge 3 ] && VARS=$BASE,$CAND
[ "$(npass $BASE)" -ge 3 ] || echo "# BASE failed the fixtures" | tee -a "$OUT/times.txt"
echo "# variants timed: $VARS" | tee -a "$OUT/times.txt"
t quick

L4="--layers-only 27,31"
MOA_CUBIN_DIR=$PWD/cubins-old timeout 12 ./bench_prefill_old $P $L4 --variants $BASE --prompts 4096 --rows 4 --reps 5 --out "$OUT/old4k.jsonl" > "$OUT/old4k.md" 2>&1
t old4k
timeout 40 ./bench_prefill $P --variants $VARS --prompts 4096 --rows 4 --reps 5 --rounds 2 --out "$OUT/ab4k.jsonl" > "$OUT/ab4k.md" 2>&1
t ab4k
MOA_CUBIN_DIR=$PWD/cubins-old timeout 12 ./bench_prefill_old $P $L4 --variants $BASE --prompts 16384 --rows 1 --reps 5 --out "$OUT/old16k.jsonl" > "$OUT/old16k.md" 2>&1
t old16k
timeout 45 ./bench_prefill $P --variants $VARS --prompts 16384 --rows 1 --reps 5 --rounds 2 --out "$OUT/ab16k.jsonl" > "$OUT/ab16k.md" 2>&1
t ab16k
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
sed -n '/^A\/B/,$p' "$OUT/ab_full.md" | head -30
for f in old4k old16k ab4k ab16k; do
  python3 -c "
import json,statistics as st,sys
from collections import defaultdict
g=defaultdict(list)
for l in open('$OUT/$f.jsonl'):
    r=json.loads(l)
    if r.get('prepass_ms') is not None and r['variant']=='$BASE': g[(r['plan'],r['prompt'],r['rows'])].append(r['prepass_ms'])
for k,v in sorted(g.items()): print('$f',*k,'prepass median %.4f ms (n %d, min %.4f, max %.4f)'%(st.median(v),len(v),min(v),max(v)))
"
done > "$OUT/prepass.txt" 2>&1
cat "$OUT/prepass.txt"

timeout 25 python3 prefill_peers.py "$OUT/ab_full.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
cat "$OUT/peers_table.md"
t peers

C="--dtypes bf16 --prefill-variant $CAND"
(timeout 45 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 $C > "$OUT/c_llama.txt" 2>&1) &
(timeout 55 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 $C > "$OUT/c_vicuna.txt" 2>&1) &
(timeout 40 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 $C --v-exponents 16,0,-13,0 > "$OUT/c_vfix.txt" 2>&1) &
(timeout 40 compute-sanitizer --tool memcheck ./cuda_check plans/fixture-gqa.toml plans/fixture-gqa-sink160.toml $C > "$OUT/c_memcheck.txt" 2>&1) &
(timeout 45 compute-sanitizer --tool racecheck ./cuda_check plans/fixture-gqa.toml $C > "$OUT/c_racecheck.txt" 2>&1) &
wait
for f in llama vicuna vfix memcheck racecheck; do echo "== $f"; tail -3 "$OUT/c_$f.txt"; done > "$OUT/check.txt"
cat "$OUT/check.txt"
t check

timeout 12 ./bench_prefill $P --variants $VARS --layers-only 0,27,31 --prompts 4096 --rows 4 --reps 1 --warmups 0 --compare --out "$OUT/compare.jsonl" > "$OUT/compare.md" 2>&1
tail -8 "$OUT/compare.md"
t compare
