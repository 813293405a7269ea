#!/bin/bash
# Session 7's prefill device call (issue 8 item 2), run from the carry folder
# (.dev-s7-prefill: bench_prefill, cuda_check, cubins/, plans/ with dense_gqa.json and dense_mha.json =
# benches/prefill/dense-32x32.json, pick.py, prefill_peers.py, peer_error.py,
# ncu_summary.py; build and cubin commands: benches/RESULTS.md, "Session 7"). Everything
# it writes comes back as $OUT/results.tgz, repacked after every step.
#
#  1. cuda_check of the ping-pong variant WG (2x64x1wg) and of OWG (2x64x1owg: ping-pong
#     and intra-warpgroup overlap) on the fixtures (f32, f16, bf16: the edge cases of
#     runtime/cases.rs at head_dim 64); compute-sanitizer racecheck and synccheck on
#     fixture-gqa bf16 (the named barriers and the overlapped waits are new). The upstream
#     plans are not cuda_checked here (their 64 kernels per variant have no carried cubins:
#     NVRTC and the driver's JIT would take a minute of device time); the sweep's --compare
#     column checks them against 2x64x2 on the benchmark's inputs (same arithmetic per row,
#     so 0 difference is expected).
#  2. The peers' own error: dense causal SDPA (flash, cuDNN, efficient, math) in bf16 and
#     f16 against f64 on inputs drawn as cuda_check draws them; dense SDPA time per backend.
#  3. VARS interleaved per layer (2x64x2 first: pick.py's baseline) on 7 layers, 16k x 1 and
#     4k x 4, --compare; the same on the dense plan (every head span = N: the kernel's core
#     speed against dense SDPA, no sparse schedule); dense SDPA beside them (ideal).
#  4. ncu (hardware counters) of 2x64x2, 2x64x2p, WG and OWG on Llama-3-8B l13 (kept
#     share 0.92) and l31 (0.26) and the dense plan, 16k x 1, one launch each.
#  NEXT=1 (the follow-up call) instead runs only: cuda_check of OWG and WG on the fixtures
#     and of OWG on both upstream plans in bf16, compute-sanitizer memcheck, racecheck and
#     synccheck of both on fixture-gqa bf16, then every layer of 2x64x2, 2x64x2p, 2x64x1w
#     and OWG at 4k x 4 and 16k x 1 with dense SDPA (the every-layer rule for a default).
#  5. Unless SKIP_FULL is set: every layer (or FULL_LAYERS) of 2x64x2, 2x64x2p, 2x64x1w and
#     WG at 4k x 4 and 16k x 1 (ratios only).
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
WG=${WG:-2x64x1wg}
OWG=${OWG:-2x64x1owg}
VARS=${VARS:-2x64x2,2x64x2p,2x64x1w,$WG,$OWG,2x64x1pwg,2x64x1opwg}
LAYERS=${LAYERS:-0,9,17,24,27,29,31}
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
s=$(date +%s); t() { echo "# $1 t=$(( $(date +%s) - s )) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
t start

if [ -n "$NEXT" ]; then
  {
  for V in $OWG $WG; do
    echo "== fixtures f32,f16,bf16, prefill $V"; timeout 20 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --prefill-variant $V 2>&1 | tail -8
  done
  echo "== vicuna7b bf16, prefill $OWG"; timeout 30 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 --prefill-variant $OWG 2>&1 | tail -5
  echo "== llama3_8b bf16, prefill $OWG"; timeout 25 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $OWG 2>&1 | tail -5
  for V in $OWG $WG; do
    for tool in memcheck racecheck synccheck; do
      echo "== $tool, prefill $V"; timeout 25 compute-sanitizer --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $V 2>&1 | tail -4
    done
  done
  } > "$OUT/check_next.txt" 2>&1
  cat "$OUT/check_next.txt"
  t check
  timeout 40 ./bench_prefill $P --variants 2x64x2,2x64x2p,2x64x1w,$OWG --prompts 4096 --rows 4 --reps 7 --out "$OUT/next_full4k.jsonl" > "$OUT/next_full4k.md" 2>&1
  timeout 40 ./bench_prefill $P --variants 2x64x2,2x64x2p,2x64x1w,$OWG --prompts 16384 --rows 1 --reps 7 --out "$OUT/next_full16k.jsonl" > "$OUT/next_full16k.md" 2>&1
  t full
  python3 pick.py "$OUT/next_full4k.jsonl" "$OUT/next_full16k.jsonl" --top 2 > /dev/null 2> "$OUT/next_full_rank.md"
  cat "$OUT/next_full_rank.md"
  cat "$OUT/next_full4k.jsonl" "$OUT/next_full16k.jsonl" > "$OUT/next_full.jsonl"
  timeout 40 python3 prefill_peers.py "$OUT/next_full.jsonl" --reps 7 --no-flex --table "$OUT/next_full_table.md" --out "$OUT/next_full_peers.jsonl" > "$OUT/next_full_peers.log" 2>&1
  cat "$OUT/next_full_table.md"
  t peers
  exit 0
fi

{
for V in $WG $OWG; do
  echo "== fixtures f32,f16,bf16, prefill $V"; timeout 20 ./cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --prefill-variant $V 2>&1 | tail -8
  for tool in racecheck synccheck; do
    echo "== $tool, prefill $V"; timeout 25 compute-sanitizer --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $V 2>&1 | tail -4
  done
done
} > "$OUT/check_wg.txt" 2>&1
cat "$OUT/check_wg.txt"
t check

timeout 50 python3 peer_error.py --time --budget-s 25 --out "$OUT/peer_error.jsonl" --table "$OUT/peer_error.md" > "$OUT/peer_error.log" 2>&1
tail -30 "$OUT/peer_error.log"
t peer_error

timeout 40 ./bench_prefill $P --variants $VARS --layers-only $LAYERS --prompts 16384 --rows 1 --reps 5 --compare --out "$OUT/s7_16k.jsonl" > "$OUT/s7_16k.md" 2>&1
timeout 35 ./bench_prefill $P --variants $VARS --layers-only $LAYERS --prompts 4096 --rows 4 --reps 5 --compare --out "$OUT/s7_4k.jsonl" > "$OUT/s7_4k.md" 2>&1
timeout 30 ./bench_prefill plans/dense_gqa.json:8 plans/dense_mha.json:32 --variants $VARS --layers-only 0 --prompts 16384,4096 --rows 1,4 --reps 5 --compare --out "$OUT/s7_dense.jsonl" > "$OUT/s7_dense.md" 2>&1
t sweep
python3 pick.py "$OUT/s7_16k.jsonl" "$OUT/s7_4k.jsonl" --top 3 > "$OUT/s7_best.txt" 2> "$OUT/s7_rank.md"
python3 pick.py "$OUT/s7_dense.jsonl" --top 3 > /dev/null 2> "$OUT/s7_dense_rank.md"
cat "$OUT/s7_rank.md" "$OUT/s7_dense_rank.md"
cat "$OUT/s7_16k.jsonl" "$OUT/s7_4k.jsonl" "$OUT/s7_dense.jsonl" > "$OUT/s7_sweep.jsonl"
timeout 35 python3 prefill_peers.py "$OUT/s7_sweep.jsonl" --reps 5 --no-flex --table "$OUT/s7_sweep_peers.md" --out "$OUT/s7_sweep_peers.jsonl" > "$OUT/s7_sweep_peers.log" 2>&1
cat "$OUT/s7_sweep_peers.md"
t peers

NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ -n "$NCU" ]; then
  timeout 10 "$NCU" --query-metrics --chip gh100 > "$OUT/ncu_metrics.txt" 2>&1
  MET=""
  for m in sm__pipe_tensor_op_gmma_cycles_active sm__pipe_tensor_op_hmma_cycles_active; do
    grep -qw "$m" "$OUT/ncu_metrics.txt" && MET="$MET${MET:+,}$m.avg.pct_of_peak_sustained_active"
  done
  echo "# extra metrics: $MET" | tee -a "$OUT/times.txt"
  NCU_ARGS=(--clock-control none -k regex:moa_prefill --section SpeedOfLight --section ComputeWorkloadAnalysis
    --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats --section SchedulerStats
    --section LaunchStats -f -o "$OUT/ncu")
  BP=(./bench_prefill plans/llama3_8b.json:8 plans/dense_gqa.json:8 --variants 2x64x2,2x64x2p,$WG,$OWG
    --layers-only 13,31 --prompts 16384 --rows 1 --reps 1 --warmups 0 --out "$OUT/ncu_bench.jsonl")
  timeout 80 "$NCU" "${NCU_ARGS[@]}" ${MET:+--metrics $MET} "${BP[@]}" > "$OUT/ncu.log" 2>&1
  if [ ! -s "$OUT/ncu.ncu-rep" ] && [ -n "$MET" ]; then
    echo "# ncu with extra metrics failed; again without" | tee -a "$OUT/times.txt"
    timeout 60 "$NCU" "${NCU_ARGS[@]}" "${BP[@]}" >> "$OUT/ncu.log" 2>&1
  fi
  tail -5 "$OUT/ncu.log"
  if [ -s "$OUT/ncu.ncu-rep" ]; then
    "$NCU" --import "$OUT/ncu.ncu-rep" --page raw --csv > "$OUT/ncu_raw.csv" 2>/dev/null
    "$NCU" --import "$OUT/ncu.ncu-rep" --page details --csv > "$OUT/ncu_details.csv" 2>/dev/null
    python3 ncu_summary.py "$OUT/ncu_raw.csv" "$OUT/ncu_bench.jsonl" > "$OUT/ncu_summary.md" 2>&1
    cat "$OUT/ncu_summary.md"
    # The report itself only if small (the device returns files up to 16 MiB).
    [ "$(stat -c %s "$OUT/ncu.ncu-rep")" -gt 12000000 ] && rm -f "$OUT/ncu.ncu-rep"
  fi
else
  echo "# no ncu" | tee -a "$OUT/times.txt"
fi
t ncu

# FULL_LAYERS: the layers whose cubins were all carried (empty: every layer), so that no
# layer mixes cubins with the driver's JIT of NVRTC's PTX.
FL=${FULL_LAYERS:+--layers-only $FULL_LAYERS}
if [ -z "$SKIP_FULL" ]; then
timeout 30 ./bench_prefill $P --variants 2x64x2,2x64x2p,2x64x1w,$WG $FL --prompts 4096 --rows 4 --reps 5 --out "$OUT/s7_full4k.jsonl" > "$OUT/s7_full4k.md" 2>&1
timeout 30 ./bench_prefill $P --variants 2x64x2,2x64x2p,2x64x1w,$WG $FL --prompts 16384 --rows 1 --reps 5 --out "$OUT/s7_full16k.jsonl" > "$OUT/s7_full16k.md" 2>&1
python3 pick.py "$OUT/s7_full4k.jsonl" "$OUT/s7_full16k.jsonl" --top 2 > /dev/null 2> "$OUT/s7_full_rank.md"
cat "$OUT/s7_full_rank.md"
t full
fi
