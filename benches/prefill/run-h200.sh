#!/bin/bash
# Device calls for the CUDA prefill (issue 8), run from the carry folder, which holds
# bench_prefill, cuda_check, cubins/ (cuda_cubins, sm_90a), ptx/ (the same kernels as PTX for
# the driver's JIT), plans/, prefill_peers.py and pick.py. Everything it writes comes back as
# $OUT/results.tgz (the device returns at most 8 files), repacked after every step so that a
# step cut off by the time limit keeps the earlier ones.
#
#   STAGE=1: cuda_check of both upstream plans in f16 and bf16 and of the fixtures;
#            compute-sanitizer memcheck + racecheck (fixture-gqa); variants side by side on
#            7 layers (16k x 1, 4k x 4) with dense SDPA and FlexAttention on the same shapes.
#   STAGE=2: every layer of VARIANTS at 4k x 1, 4 and 16k x 1, 2 with the peers, the same
#            kernel from cubin and from PTX, and cuda_check of PV1 if it is not the default.
#   STAGE=3: the warp-specialized kernel (session 6, `w`: producer warpgroup + setmaxnreg
#            consumers), never run before: cuda_check of WS (default 2x64x1w) on the fixtures
#            and both upstream plans in f16 and bf16, compute-sanitizer memcheck, racecheck and
#            synccheck on fixture-gqa bf16; then WSVARS interleaved per layer with 2x64x2
#            (first: the baseline pick.py divides by) and 2x64x2p on 7 layers (16k x 1, 4k x 4,
#            --compare) with the peers; then every layer of 2x64x2, 2x64x2p and WS at 4k x 4
#            and 16k x 1 with the peers. The sweeps run even if a check fails (their
#            --compare column shows a wrong kernel too). The carry folder's build and cubin
#            commands: benches/RESULTS.md, "Session 6, branch s6-prefill2".
#
# PV1: the prefill variant cuda_check and compute-sanitizer run (the default unless set).
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
STAGE=${STAGE:-1}
PV1=${PV1:-2x64x2}
VARIANTS=${VARIANTS:-2x64x2p,2x64x2,2x64x1,3x64x1}
LAYERS=${LAYERS:-0,9,17,24,27,29,31}
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
B="./bench_prefill $P"
s=$(date +%s); t() { echo "# $1 t=$(( $(date +%s) - s )) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
t start

if [ "$STAGE" = 1 ]; then
  {
  echo "== fixtures, prefill $PV1"; timeout 15 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --prefill-variant $PV1 2>&1 | tail -8
  echo "== vicuna7b f16,bf16, prefill $PV1"; timeout 40 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes f16,bf16 --prefill-variant $PV1 2>&1 | tail -6
  echo "== llama3_8b f16,bf16, prefill $PV1"; timeout 25 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes f16,bf16 --prefill-variant $PV1 2>&1 | tail -6
  } > "$OUT/check.txt" 2>&1
  cat "$OUT/check.txt"
  t check
  {
  echo "== memcheck, prefill $PV1"; timeout 20 compute-sanitizer --tool memcheck ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $PV1 2>&1 | tail -4
  echo "== racecheck, prefill $PV1"; timeout 25 compute-sanitizer --tool racecheck ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $PV1 2>&1 | tail -4
  } > "$OUT/sanitizer.txt" 2>&1
  cat "$OUT/sanitizer.txt"
  t sanitizer
  timeout 30 $B --variants $VARIANTS --layers-only $LAYERS --prompts 16384 --rows 1 --reps 5 --compare --out "$OUT/sweep16k.jsonl" > "$OUT/sweep16k.md" 2>&1
  timeout 25 $B --variants $VARIANTS --layers-only $LAYERS --prompts 4096 --rows 4 --reps 5 --compare --out "$OUT/sweep4k.jsonl" > "$OUT/sweep4k.md" 2>&1
  t sweep
  python3 pick.py "$OUT/sweep16k.jsonl" "$OUT/sweep4k.jsonl" --top 3 > "$OUT/best.txt" 2> "$OUT/sweep_rank.md"
  cat "$OUT/sweep_rank.md"
  cat "$OUT/sweep16k.jsonl" "$OUT/sweep4k.jsonl" > "$OUT/sweep.jsonl"
  timeout 25 python3 prefill_peers.py "$OUT/sweep.jsonl" --reps 5 --flex-budget-s 12 --table "$OUT/sweep_peers.md" --out "$OUT/sweep_peers.jsonl" > "$OUT/sweep_peers.log" 2>&1
  tail -20 "$OUT/sweep_peers.md"
  t peers
elif [ "$STAGE" = 3 ]; then
  WS=${WS:-2x64x1w}
  WSVARS=${WSVARS:-2x64x2,2x64x2p,2x64x1w,2x64x1pw,2x128x1w}
  {
  echo "== fixtures f32,f16,bf16, prefill $WS"; timeout 20 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --prefill-variant $WS 2>&1 | tail -8
  echo "== vicuna7b f16,bf16, prefill $WS"; timeout 50 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes f16,bf16 --prefill-variant $WS 2>&1 | tail -6
  echo "== llama3_8b f16,bf16, prefill $WS"; timeout 35 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes f16,bf16 --prefill-variant $WS 2>&1 | tail -6
  } > "$OUT/check_ws.txt" 2>&1
  cat "$OUT/check_ws.txt"
  t check_ws
  {
  for tool in memcheck racecheck synccheck; do
    echo "== $tool, prefill $WS"; timeout 30 compute-sanitizer --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $WS 2>&1 | tail -4
  done
  } > "$OUT/sanitizer_ws.txt" 2>&1
  cat "$OUT/sanitizer_ws.txt"
  t sanitizer_ws
  timeout 45 $B --variants $WSVARS --layers-only $LAYERS --prompts 16384 --rows 1 --reps 5 --compare --out "$OUT/ws16k.jsonl" > "$OUT/ws16k.md" 2>&1
  timeout 40 $B --variants $WSVARS --layers-only $LAYERS --prompts 4096 --rows 4 --reps 5 --compare --out "$OUT/ws4k.jsonl" > "$OUT/ws4k.md" 2>&1
  t ws_sweep
  python3 pick.py "$OUT/ws16k.jsonl" "$OUT/ws4k.jsonl" --top 3 > "$OUT/ws_best.txt" 2> "$OUT/ws_rank.md"
  cat "$OUT/ws_rank.md"
  cat "$OUT/ws16k.jsonl" "$OUT/ws4k.jsonl" > "$OUT/ws_sweep.jsonl"
  timeout 30 python3 prefill_peers.py "$OUT/ws_sweep.jsonl" --reps 5 --flex-budget-s 12 --table "$OUT/ws_sweep_peers.md" --out "$OUT/ws_sweep_peers.jsonl" > "$OUT/ws_sweep_peers.log" 2>&1
  tail -20 "$OUT/ws_sweep_peers.md"
  t ws_peers
  timeout 60 $B --variants 2x64x2,2x64x2p,$WS --prompts 4096 --rows 4 --reps 7 --out "$OUT/ws_full4k.jsonl" > "$OUT/ws_full4k.md" 2>&1
  timeout 60 $B --variants 2x64x2,2x64x2p,$WS --prompts 16384 --rows 1 --reps 7 --out "$OUT/ws_full16k.jsonl" > "$OUT/ws_full16k.md" 2>&1
  t ws_full
  python3 pick.py "$OUT/ws_full4k.jsonl" "$OUT/ws_full16k.jsonl" --top 2 > /dev/null 2> "$OUT/ws_full_rank.md"
  cat "$OUT/ws_full_rank.md"
  cat "$OUT/ws_full4k.jsonl" "$OUT/ws_full16k.jsonl" > "$OUT/ws_full.jsonl"
  timeout 40 python3 prefill_peers.py "$OUT/ws_full.jsonl" --reps 7 --flex-every 8 --flex-budget-s 15 --table "$OUT/ws_full_table.md" --out "$OUT/ws_full_peers.jsonl" > "$OUT/ws_full_peers.log" 2>&1
  tail -20 "$OUT/ws_full_table.md"
  t ws_full_peers
else
  timeout 40 $B --variants $VARIANTS --prompts 4096 --rows 1,4 --reps 7 --out "$OUT/full4k.jsonl" > "$OUT/full4k.md" 2>&1
  timeout 50 $B --variants $VARIANTS --prompts 16384 --rows 1,2 --reps 7 --out "$OUT/full16k.jsonl" > "$OUT/full16k.md" 2>&1
  t full
  cat "$OUT/full4k.jsonl" "$OUT/full16k.jsonl" > "$OUT/moa.jsonl"
  timeout 40 python3 prefill_peers.py "$OUT/moa.jsonl" --reps 7 --flex-every 8 --flex-budget-s 15 --table "$OUT/prefill_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
  tail -20 "$OUT/prefill_table.md"
  t peers
  # The default kernel JIT-compiled by the driver from PTX, against its cubin (call 2's drift).
  env -u MOA_CUBIN_DIR timeout 20 $B --ptx-cache ptx --variants $PV1 --layers-only $LAYERS --prompts 16384 --rows 1 --reps 7 --out "$OUT/ptx16k.jsonl" > "$OUT/ptx16k.md" 2>&1
  tail -16 "$OUT/ptx16k.md"
  t ptx
  if [ -n "$CHECK" ]; then
    {
    echo "== vicuna7b bf16, prefill $PV1"; timeout 25 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 --prefill-variant $PV1 2>&1 | tail -5
    echo "== llama3_8b bf16, prefill $PV1"; timeout 15 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $PV1 2>&1 | tail -5
    } > "$OUT/check2.txt" 2>&1
    cat "$OUT/check2.txt"
    t check2
  fi
fi
