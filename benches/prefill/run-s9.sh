#!/bin/bash
# Session 9's prefill call (issue 8 item 2): the new bf16 default 2x64x1owghv (`v`) against
# `u` (its pre-pass reads V once) and `r` (lazy O rescale), and the CUDA engine's prefill
# with the `v` pre-pass end to end. Run from the carry folder (.dev-s9-prefill:
# bench_prefill, cuda_check, cuda_engine (release test binary), cubins.tar.xz, plans/,
# ab.py, prefill_peers.py; build recipe in benches/RESULTS.md, "Session 9"). Everything it
# writes comes back as $OUT/results.tgz, repacked after every step.
#
#  1. Checks of NEW (u and r together): cuda_check on the fixtures (f32, f16, bf16) and on
#     both upstream plans in bf16 and f16 (f16: owg + r; u and h apply to bf16 only);
#     compute-sanitizer memcheck and racecheck on fixture-gqa bf16.
#  2. The engine: tests/cuda_engine.rs's perplexity test (SmolLM2 shape, bf16, head_dim 64:
#     the default prefill is `v`, so every prefill queues the pre-pass) and the op checks.
#  3. Every layer of both plans at 4k x 4 and 16k x 1: BASE, U and NEW in turn, --rounds 4
#     (pre-pass inside the time); ab.py: A/A noise and time / BASE per row.
#  4. Layers 0 and 31 at 4k x 4: outputs against BASE's (--compare).
#  5. Dense causal SDPA on the same shapes (prefill_peers.py): moa / ideal per row.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
BASE=${BASE:-2x64x1owghv}
U=${U:-2x64x1owghvu}
NEW=${NEW:-2x64x1owghvur}
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
# LAYERS=0,9,17,31 cuts step 3 to those layers (a short call).
LO=${LAYERS:+--layers-only $LAYERS}
s=$(date +%s); t() { echo "# $1 t=$(( $(date +%s) - s )) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
[ -d cubins ] || { mkdir -p cubins && { tar xJf cubins.tar.xz -C cubins ||
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' cubins.tar.xz cubins; }; }
ls cubins | wc -l
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
t start

if [ -z "$SKIP_CHECK" ]; then
{
  echo "== fixtures f32,f16,bf16, prefill $NEW"; timeout 25 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --prefill-variant $NEW 2>&1 | tail -8
  echo "== vicuna7b bf16,f16, prefill $NEW"; timeout 45 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16,f16 --prefill-variant $NEW 2>&1 | tail -5
  echo "== llama3_8b bf16,f16, prefill $NEW"; timeout 35 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16,f16 --prefill-variant $NEW 2>&1 | tail -5
  for tool in memcheck racecheck; do
    echo "== $tool, prefill $NEW"; timeout 25 compute-sanitizer --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $NEW 2>&1 | tail -2
  done
} > "$OUT/check.txt" 2>&1
cat "$OUT/check.txt"
t check
fi

if [ -z "$SKIP_ENGINE" ]; then
  # Run from the repository root (the test resolves paths from it); the binary has no cargo.
  ( cd .. && timeout 60 ./.dev-s9-prefill/cuda_engine --test-threads 1 perplexity_from_one_prefill ops_match 2>&1 ) | tail -15 > "$OUT/engine.txt"
  cat "$OUT/engine.txt"
  t engine
fi

VARS=$BASE,$U,$NEW
timeout 50 ./bench_prefill $P $LO --variants $VARS --prompts 4096 --rows 4 --reps 5 --rounds 4 --out "$OUT/ab4k.jsonl" > "$OUT/ab4k.md" 2>&1
t ab4k
timeout 60 ./bench_prefill $P $LO --variants $VARS --prompts 16384 --rows 1 --reps 5 --rounds 4 --out "$OUT/ab16k.jsonl" > "$OUT/ab16k.md" 2>&1
t ab16k
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
cat "$OUT/ab_full.md"
t ab

timeout 20 ./bench_prefill $P --variants $VARS --layers-only 0,31 --prompts 4096 --rows 4 --reps 1 --warmups 0 --compare --out "$OUT/compare.jsonl" > "$OUT/compare.md" 2>&1
cat "$OUT/compare.md"
t compare

timeout 30 python3 prefill_peers.py "$OUT/ab_full.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
cat "$OUT/peers_table.md"
t peers
