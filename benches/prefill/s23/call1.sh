#!/bin/bash
# s23-prefill's first device call (run tool timeout_s 200), from the repository root:
#   bash .dev-s23-prefill/call1.sh
# Carry .dev-s23-prefill/ (benches/prefill/s23/pack.sh). Everything comes back as
# $OUT/results.tgz. Cubins built here (cuda_cubins --lineinfo: line tables, the same SASS;
# li/ = main's default 3x64x1owghvuncafbdm on Vicuna-7B l21 (one-tile), l22, l27 (`t`) and
# Llama-3-8B l29 (`t`); tr/ = the same sources instrumented by trace_patch.py (clock64
# trace of 3 blocks' four roles), stored under the plain sources' keys).
#
# PREDICTIONS (before the call):
#  1. ncu, Vicuna-7B l27 (`t`) at 4k x 4, one launch: per consumer warp per query tile
#     (s19's conversion) the fixed regions sum to ~3 us (s19's B: 3.03), the largest the
#     epilogue (normalize + stmatrix + copy ~1.0), section 0 + its softmax ~1.1, tile start
#     ~0.5; the turn_wait (named barrier 2/3/5, stall `barrier`) of the sections after a
#     tile switch and the K/V `full` waits (mbarrier try_wait) in the first sections of a
#     tile carry the rest: the loop's `long_sb`/`barrier` share at a full wait > 5%.
#  2. trace (l27): at each query-tile switch, the gap between the last warpgroup's last
#     turn (ev 6) and the first warpgroup's next section-0 turn (ev 2) ~ 1.5-2.5 us =
#     that warpgroup's P.V wait + epilogue (+ tile start); warpgroup 2's first band
#     section of the next tile (ev 3 -> 4) waits on its K/V tile (ev 3 late) by ~0.5-1 us
#     because warpgroup 0 releases the band-end positions only after its epilogue
#     (ev 10), which the producer's slot wait (ev 23) for the next tile's 3rd/4th tile
#     shows as a wait ending right after ev 10.
#  3. trace overhead: kernel time with the trace within 2% of the plain kernel's.
D=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
END=${END:-180}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "$OUT/results.tgz" -C "$R" .; }
cd "$D" || exit 1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include PYTHONUNBUFFERED=1
mkdir -p cubins && tar xJf cubins.tar.xz -C cubins
gunzip -f bench_prefill.gz; chmod +x bench_prefill
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader > "$R/env.txt" 2>&1
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
NVD=$(command -v nvdisasm || ls /usr/local/cuda/bin/nvdisasm 2>/dev/null | head -1)
"$NCU" --version | tail -1 >> "$R/env.txt"
el "start, $(ls cubins/li | wc -l) + $(ls cubins/tr | wc -l) files"
DEF=3x64x1owghvuncafbdm
# --- 0. the plain kernels' times (and a smoke test), then the traced ones
export MOA_CUBIN_DIR=$D/cubins/li
timeout 30 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF --layers-only 21,22,27 --prompts 4096 --rows 4 --reps 20 --out "$R/plain_v.jsonl" > "$R/plain_v.txt" 2>&1
el "plain v rc=$?"
timeout 20 ./bench_prefill plans/llama3_8b.json:8 --variants $DEF --layers-only 29 --prompts 4096 --rows 4 --reps 20 --out "$R/plain_l.jsonl" > "$R/plain_l.txt" 2>&1
el "plain l rc=$?"
export MOA_CUBIN_DIR=$D/cubins/tr
for cfg in "vicuna7b.json:32 22 4096 4" "vicuna7b.json:32 27 4096 4" "vicuna7b.json:32 27 16384 1" "llama3_8b.json:8 29 4096 4"; do
  set -- $cfg
  timeout 25 ./bench_prefill plans/$1 --variants $DEF --layers-only $2 --prompts $3 --rows $4 --reps 20 --warmups 1 \
    --trace-out "$R/trace.txt" --out "$R/trace_bench.jsonl" >> "$R/trace_bench.txt" 2>&1
  el "trace $cfg rc=$?"
done
wc -l "$R/trace.txt"; gzip -f "$R/trace.txt"
grep -ho '"layer":[0-9]*\|"kernel_ms":[0-9.]*\|"prompt":[0-9]*' "$R"/plain_*.jsonl "$R/trace_bench.jsonl" | paste - - - 
save
# --- 1. Nsight Compute: one launch each of l21 (one-tile) and l27 (`t`), source counters
export MOA_CUBIN_DIR=$D/cubins/li
for f in cubins/li/*.cu; do n=$(grep -o 'moa_prefill_bf16_hd128_l[0-9]*(' "$f" | head -1 | tr -d '('); [ -n "$n" ] && cp "$f" "./l${n##*_l}.cu"; done
ls *.cu > "$R/sources.txt" 2>&1
if left 60; then
  M=sm__cycles_active.avg,gpc__cycles_elapsed.max,sm__ctas_launched.sum,smsp__cycles_active.avg
  timeout 70 "$NCU" --clock-control none --replay-mode kernel --import-source yes \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section SourceCounters \
    --section LaunchStats --section Occupancy --metrics $M --warp-sampling-interval 5 -f \
    -k regex:'moa_prefill_bf16_hd128_l(21|27)$' --launch-count 2 -o "$R/ncu1" \
    ./bench_prefill plans/vicuna7b.json:32 --variants $DEF --layers-only 21,27 --prompts 4096 --rows 4 --reps 1 --warmups 0 --out "$R/ncu_bench1.jsonl" > "$R/ncu1.log" 2>&1
  el "ncu rc=$?"
  tail -3 "$R/ncu1.log"
  if [ -s "$R/ncu1.ncu-rep" ]; then
    "$NCU" --import "$R/ncu1.ncu-rep" --page details --csv > "$R/ncu_details1.csv" 2>"$R/ncu_err.txt"
    "$NCU" --import "$R/ncu1.ncu-rep" --page source --csv --print-source sass > "$R/ncu_source1.csv" 2>>"$R/ncu_err.txt"
    "$NCU" --import "$R/ncu1.ncu-rep" --page source --csv --print-source cuda,sass > "$R/ncu_cudasass1.csv" 2>>"$R/ncu_err.txt"
    ls -la "$R"/ncu*; gzip -f "$R"/ncu_*1.csv
    [ $(stat -c %s "$R/ncu1.ncu-rep") -gt 5000000 ] && rm -f "$R/ncu1.ncu-rep"
  fi
  el "ncu export"
fi
save
# --- 2. SASS with line numbers (the mapping, in case ncu's source page lacks it)
for f in cubins/li/*.cubin; do "$NVD" -g -c "$f" 2>/dev/null | gzip > "$R/sass_$(basename $f .cubin | cut -c1-12).txt.gz"; done
el done; save
