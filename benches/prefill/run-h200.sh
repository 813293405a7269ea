#!/bin/bash
# One device call (issue 8, prefill): correctness of the upstream plans in f16 and bf16, a
# sweep of prefill kernel variants on 7 layers, every layer of the baseline and the two
# fastest variants at 4k and 16k, the PyTorch peers (dense causal SDPA, FlexAttention) on
# the same shapes, and compute-sanitizer. Run from the carry folder, which holds
# bench_prefill, cuda_check, cubins/ (cuda_cubins), plans/, prefill_peers.py and pick.py.
# PV1, PV2: the prefill variants that cuda_check and compute-sanitizer run. Everything it
# writes comes back as results.tgz.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
# The device tool returns at most 8 files from $OUT: results go to a scratch folder and are packed into
# $OUT/results.tgz after every step (so a step cut off by the time limit keeps the earlier ones).
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
PV1=${PV1:-2x64x2}; PV2=${PV2:-3x64x1os}
FULLSET=${FULLSET:-2x64x2,2x64x2s,2x64x1os,3x64x1os,2x128x1os}
SWEEP=${SWEEP:-$FULLSET,1x64x2s}
LAYERS=${LAYERS:-0,9,17,24,27,29,31}
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
s=$(date +%s); t() { echo "# $1 t=$(( $(date +%s) - s )) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
nproc >> "$OUT/env.txt"

# NVRTC once for every kernel without a cubin (PTX kept in cubins/ for the later steps).
{
timeout 60 ./bench_prefill $P --compile-only --ptx-cache cubins --variants $FULLSET
timeout 30 ./bench_prefill $P --compile-only --ptx-cache cubins --variants $PV1 --dtype f16
} > "$OUT/compile.txt" 2>&1
t compile

# Task A: correctness against the f64 CPU reference (standard + random cases, every layer).
{
for pv in $PV1 $PV2; do
  echo "== fixtures, prefill $pv"; timeout 25 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --prefill-variant $pv 2>&1 | tail -8
done
echo "== vicuna7b f16,bf16, prefill $PV1"; timeout 45 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes f16,bf16 --prefill-variant $PV1 2>&1 | tail -6
echo "== llama3_8b f16,bf16, prefill $PV1"; timeout 45 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes f16,bf16 --prefill-variant $PV1 2>&1 | tail -6
echo "== llama3_8b bf16, prefill $PV2"; timeout 30 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $PV2 2>&1 | tail -5
} > "$OUT/check.txt" 2>&1
t check

# Task B: variants side by side on 7 layers (outputs compared with the first variant).
B="./bench_prefill $P --ptx-cache cubins"
timeout 40 $B --variants $SWEEP --layers-only $LAYERS --prompts 16384 --rows 1 --reps 7 --compare --out "$OUT/sweep16k.jsonl" > "$OUT/sweep16k.md" 2>&1
timeout 40 $B --variants $SWEEP --layers-only $LAYERS --prompts 4096 --rows 4 --reps 7 --compare --out "$OUT/sweep4k.jsonl" > "$OUT/sweep4k.md" 2>&1
t sweep
BEST=$(python3 pick.py "$OUT/sweep16k.jsonl" "$OUT/sweep4k.jsonl" --top 2 2> "$OUT/sweep_rank.md")
BEST=${BEST:-2x64x2,$PV1,$PV2}
echo "$BEST" > "$OUT/best.txt"
# Every layer of the baseline and the two fastest variants.
timeout 40 $B --variants $BEST --prompts 4096 --rows 1,4 --reps 9 --out "$OUT/full4k.jsonl" > "$OUT/full4k.md" 2>&1
timeout 50 $B --variants $BEST --prompts 16384 --rows 1,2 --reps 9 --out "$OUT/full16k.jsonl" > "$OUT/full16k.md" 2>&1
t full
cat "$OUT/full4k.jsonl" "$OUT/full16k.jsonl" > "$OUT/moa.jsonl"
timeout 50 python3 prefill_peers.py "$OUT/moa.jsonl" --reps 7 --flex-every 8 --flex-budget-s 20 --table "$OUT/prefill_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
t peers

{
for pv in $PV2 $PV1; do
  echo "== memcheck, prefill $pv"; timeout 25 compute-sanitizer --tool memcheck ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $pv 2>&1 | tail -4
  echo "== racecheck, prefill $pv"; timeout 30 compute-sanitizer --tool racecheck ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $pv 2>&1 | tail -4
done
} > "$OUT/sanitizer.txt" 2>&1
t sanitizer
