#!/bin/bash
# Session 10's prefill device call (issue 8 item 2), run from the carry folder
# .dev-s10-prefill/ (bench_prefill, cuda_check, cubins.tar.xz, plans/, ab.py,
# prefill_peers.py; build recipe in benches/RESULTS.md, "Session 10"). Everything it writes
# comes back as $OUT/results.tgz, repacked after every step.
#
# BASE = the bf16 default 2x64x1owghvu; CANDS: `e` (the softmax kept under the previous
# tile's P·V by a block boundary before its wait, O's rescale while the next Q·Kᵀ
# executes, four partial row maxima), `q` (Q·Kᵀ with Q's A fragments in registers) and
# 3x64x1owghvu (three consumer warpgroups in ping-pong). SUBS = variants timed on
# SUB_LAYERS and the dense plan only (128-key tiles).
#
#  1. Quick checks of each candidate: cuda_check on the fixtures in bf16.
#  2. Every layer of both plans at 4k x 4 and 16k x 1, BASE and CANDS in turn, --rounds 3;
#     ab.py: A/A noise and time / BASE per row.
#  3. SUB_LAYERS and the dense plan (every span = N): BASE, CANDS and SUBS, --rounds 2.
#  4. Layers 0 and 31 at 4k x 4: every output against BASE's (--compare; e, q and 3x64 do
#     the same arithmetic per row, so 0 is expected).
#  5. PICK (default: the candidate with the lowest geomean in step 2, if below 1): cuda_check
#     on both upstream plans in bf16 and f16, compute-sanitizer memcheck and racecheck on
#     fixture-gqa bf16, and the `_vfix` path: every layer's standard cases with V of KV
#     heads scaled by 2^16 and 2^-13 (cuda_check --v-exponents).
#  6. ncu source counters (per-SASS-instruction stall samples) of BASE and PICK on the
#     dense GQA plan at 16k x 1.
#  7. f16 storage: 2x64x1owg (its default) against 2x64x1owge, every layer.
#  8. Dense causal SDPA on the same shapes (prefill_peers.py): moa / ideal per row.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
BASE=${BASE:-2x64x1owghvu}
CANDS=${CANDS:-2x64x1owghvue,2x64x1owghvuq,3x64x1owghvu}
SUBS=${SUBS:-2x128x1owghvu}
SUB_LAYERS=${SUB_LAYERS:-0,9,13,17,24,27,29,31}
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
LO=${LAYERS:+--layers-only $LAYERS}
s=$(date +%s); t() { echo "# $1 t=$(( $(date +%s) - s )) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
[ -d cubins ] || { mkdir -p cubins && { tar xJf cubins.tar.xz -C cubins ||
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' cubins.tar.xz cubins; }; }
for b in bench_prefill cuda_check; do [ -x $b ] || { gunzip -f $b.gz; chmod +x $b; }; done
ls cubins | wc -l
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
t start

{
  for V in ${CANDS//,/ }; do
    echo "== fixtures bf16, prefill $V"; timeout 15 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $V 2>&1 | tail -4
  done
} > "$OUT/quick.txt" 2>&1
cat "$OUT/quick.txt"
t quick

VARS=$BASE,$CANDS
timeout 70 ./bench_prefill $P $LO --variants $VARS --prompts 4096 --rows 4 --reps 5 --rounds 3 --out "$OUT/ab4k.jsonl" > "$OUT/ab4k.md" 2>&1
t ab4k
timeout 70 ./bench_prefill $P $LO --variants $VARS --prompts 16384 --rows 1 --reps 5 --rounds 3 --out "$OUT/ab16k.jsonl" > "$OUT/ab16k.md" 2>&1
t ab16k
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
cat "$OUT/ab_full.md"
t ab

V4=$VARS,$SUBS
timeout 40 ./bench_prefill $P --variants $V4 --layers-only $SUB_LAYERS --prompts 16384,4096 --rows 1,4 --reps 5 --rounds 2 --out "$OUT/sub.jsonl" > "$OUT/sub.md" 2>&1
timeout 25 ./bench_prefill plans/dense_gqa.json:8 plans/dense_mha.json:32 --layers-only 0 --variants $V4 --prompts 16384,4096 --rows 1,4 --reps 5 --rounds 2 --out "$OUT/dense.jsonl" > "$OUT/dense.md" 2>&1
python3 ab.py "$OUT/sub.jsonl" --collapsed "$OUT/sub_c.jsonl" > "$OUT/sub_ab.md" 2>&1
python3 ab.py "$OUT/dense.jsonl" --collapsed "$OUT/dense_c.jsonl" > "$OUT/dense_ab.md" 2>&1
cat "$OUT/sub_ab.md" "$OUT/dense_ab.md"
t sub
timeout 20 ./bench_prefill $P --variants $V4 --layers-only 0,31 --prompts 4096 --rows 4 --reps 1 --warmups 0 --compare --out "$OUT/compare.jsonl" > "$OUT/compare.md" 2>&1
cat "$OUT/compare.md"
t compare

# The candidate with the lowest geomean over every row (ab_full.md's A/B table), if < 1.
PICK=${PICK:-$(python3 - "$OUT/ab_full.md" <<'EOF'
import re, sys
best, ab = None, False
for line in open(sys.argv[1]):
    ab = ab or line.startswith("A/B")
    if line.startswith("Per configuration"):
        break
    c = [x.strip() for x in line.split("|")]
    if ab and len(c) > 4 and re.match(r"\d+x\d+x\d", c[1]) and c[2].isdigit():
        try:
            g = float(c[3])
        except ValueError:
            continue
        if g < 1 and (best is None or g < best[0]):
            best = (g, c[1])
print(best[1] if best else "")
EOF
)}
echo "# pick: ${PICK:-none}" | tee -a "$OUT/times.txt"
if [ -n "$PICK" ]; then
{
  echo "== fixtures f32,f16,bf16, prefill $PICK"; timeout 25 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --prefill-variant $PICK 2>&1 | tail -8
  echo "== vicuna7b bf16,f16, prefill $PICK"; timeout 45 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16,f16 --prefill-variant $PICK 2>&1 | tail -5
  echo "== llama3_8b bf16,f16, prefill $PICK"; timeout 35 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16,f16 --prefill-variant $PICK 2>&1 | tail -5
  for tool in memcheck racecheck; do
    echo "== $tool, prefill $PICK"; timeout 25 compute-sanitizer --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $PICK 2>&1 | tail -2
  done
} > "$OUT/check.txt" 2>&1
cat "$OUT/check.txt"
t check
fi
# `_vfix` on the GPU: KV heads with |v| up to 2^16 and below 2^-13 beside unscaled ones.
{
  for V in $BASE $PICK; do
    echo "== llama3_8b bf16, V x 2^[16,0,-13,0], prefill $V"
    timeout 25 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $V --v-exponents 16,0,-13,0 2>&1 | tail -6
  done
} > "$OUT/vfix.txt" 2>&1
cat "$OUT/vfix.txt"
t vfix

NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ -n "$NCU" ] && [ -z "$SKIP_NCU" ]; then
  for V in $BASE $PICK; do
    timeout 40 "$NCU" --clock-control none -k regex:moa_prefill --section SourceCounters --section WarpStateStats \
      --section SpeedOfLight --import-source no -f -o "$OUT/ncu-$V" \
      ./bench_prefill plans/dense_gqa.json:8 --layers-only 0 --variants $V --prompts 16384 --rows 1 --reps 1 --warmups 0 \
      --out "$OUT/ncu_bench-$V.jsonl" > "$OUT/ncu-$V.log" 2>&1
    if [ -s "$OUT/ncu-$V.ncu-rep" ]; then
      "$NCU" --import "$OUT/ncu-$V.ncu-rep" --page source --csv --print-source sass > "$OUT/ncu_sass-$V.csv" 2>"$OUT/ncu_sass-$V.err" ||
        "$NCU" --import "$OUT/ncu-$V.ncu-rep" --page source --csv > "$OUT/ncu_sass-$V.csv" 2>>"$OUT/ncu_sass-$V.err"
      "$NCU" --import "$OUT/ncu-$V.ncu-rep" --page details --csv > "$OUT/ncu_details-$V.csv" 2>/dev/null
      rm -f "$OUT/ncu-$V.ncu-rep"
    fi
    tail -3 "$OUT/ncu-$V.log"
  done
fi
t ncu

# f16 storage: its default 2x64x1owg against F16 (the same loop change; h, v and u do not
# apply to f16), every layer, --rounds 3.
F16=${F16:-2x64x1owge}
timeout 40 ./bench_prefill $P $LO --dtype f16 --variants 2x64x1owg,$F16 --prompts 4096 --rows 4 --reps 5 --rounds 3 --out "$OUT/f16_4k.jsonl" > "$OUT/f16_4k.md" 2>&1
timeout 50 ./bench_prefill $P $LO --dtype f16 --variants 2x64x1owg,$F16 --prompts 16384 --rows 1 --reps 5 --rounds 3 --out "$OUT/f16_16k.jsonl" > "$OUT/f16_16k.md" 2>&1
python3 ab.py "$OUT/f16_4k.jsonl" "$OUT/f16_16k.jsonl" --collapsed "$OUT/f16_c.jsonl" > "$OUT/f16_ab.md" 2>&1
cat "$OUT/f16_ab.md"
t f16

cat "$OUT/ab_full.jsonl" "$OUT/dense_c.jsonl" > "$OUT/all_c.jsonl"
timeout 40 python3 prefill_peers.py "$OUT/all_c.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
cat "$OUT/peers_table.md"
t peers
