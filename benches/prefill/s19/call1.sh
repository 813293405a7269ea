#!/bin/bash
# s19-prefill's device call (run tool timeout_s 250), from the repository root:
#   bash .dev-s19-prefill/call1.sh
# Carry .dev-s19-prefill/ (benches/prefill/s19/pack.sh). Everything comes back as
# $OUT/results.tgz.
#
# DEF = 3x64x1owghvuncafm (main's bf16 default; narrow layers `…unctfm`), B = 3x64x1owghvuncafbm
# (`b`: lean block ends: the one-tile kernel's Q copy with one fixed chunk per thread and a
# barrier per warpgroup, every form's output stores with one fixed chunk per lane, `t`'s
# query-tile geometry from shared memory). Same arithmetic: outputs identical.
#
# PREDICTIONS (before the call):
#  0. cuda_check bf16 with B: Llama-3-8B 2.063e-3, Vicuna-7B 2.075e-3 (DEF's, same
#     arithmetic); memcheck 0 errors and racecheck 0 hazards on fixture-gqa (head_dim 64)
#     with 2x64x1owghvuncb and 2x64x1owghvunctb, and on bench_prefill's B launches of
#     Vicuna-7B l2 (`t`) and l15 at 700 x 3; bench_prefill --compare B vs DEF: max diff 0
#     on every layer. (tests/cuda_engine.rs not run: its models have head_dim 64, where
#     no default takes `b`.)
#  1. In blocks (warm-up 3 s of SDPA, then A B, B A, A B, B A, A B; pass 0 left out):
#     B / DEF at 4k x 4: near-dense layers 0.97-0.985 (F 4.05 -> ~2.5-3 us a block:
#     1-1.5 us x 2816 blocks / 132 SMs of ~1.1 ms), narrow (`t`) layers 0.93-0.96
#     (~1.5 us of ~22 us a query tile); 16k x 1: near-dense 0.99-0.995, narrow 0.97-0.98.
#     Fit over B's one-tile rows: F ~2.5-3 us a block, c unchanged (1.43 us a tile).
#  2. ncu of B on Vicuna-7B l15/l27 at 4k x 4: the output loop's share of the samples
#     falls from 2.9% (l15) / 3.5% (l27) to under 1%, the Q copy's from 1.4% to ~0.3%.
D=$(cd "$(dirname "$0")" && pwd)
ROOT=$PWD
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
END=${END:-235}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "$OUT/results.tgz" -C "$R" .; }
# The test binary reads the repository through its build path.
[ -e /work/wt-s19-prefill ] || { mkdir -p /work && ln -s "$ROOT" /work/wt-s19-prefill; }
cd "$D" || exit 1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include PYTHONUNBUFFERED=1
mkdir -p cubins && tar xJf cubins.tar.xz -C cubins
for b in bench_prefill cuda_check; do gunzip -f $b.gz; chmod +x $b; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader > "$R/env.txt" 2>&1
el "start, $(ls cubins | wc -l) cubins"
DEF=3x64x1owghvuncafm
B=3x64x1owghvuncafbm
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
export MOA_CUBIN_DIR=$D/cubins
# --- 0. correctness, in parallel
( timeout 60 "$SAN" --tool memcheck ./bench_prefill plans/vicuna7b.json:32 --variants $B --layers-only 2,15 --prompts 700 --rows 3 --reps 1 --warmups 0 --out "$R/san_bench.jsonl" > "$R/san_memcheck_bench.txt" 2>&1; echo "rc=$?" >> "$R/san_memcheck_bench.txt" ) &
( timeout 90 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $B > "$R/c_llama.txt" 2>&1; echo "rc=$?" >> "$R/c_llama.txt" ) &
( timeout 90 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 --prefill-variant $B > "$R/c_vicuna.txt" 2>&1; echo "rc=$?" >> "$R/c_vicuna.txt" ) &
( for v in 2x64x1owghvuncb 2x64x1owghvunctb; do
    for tool in memcheck racecheck; do
      timeout 45 "$SAN" --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $v > "$R/san_${tool}_$v.txt" 2>&1; echo "rc=$?" >> "$R/san_${tool}_$v.txt"
    done
  done ) &
wait
el "checks"
tail -n 3 "$R"/c_*.txt
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|^rc=" "$R"/san_*.txt
save
# Same outputs: B against DEF on layers of both forms (Vicuna-7B l2 and l27 are `t`).
timeout 30 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF,$B --layers-only 0,2,15,27 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare.jsonl" > "$R/compare.txt" 2>&1
el "compare rc=$?"; grep -c '"max_diff_vs_first":0.0' "$R/compare.jsonl"; grep -o '"max_diff_vs_first":[^,]*' "$R/compare.jsonl" | sort | uniq -c
# --- 1. blocks beside SDPA: 4k x 4 then 16k x 1, DEF and B, ABBA, warm-up first
left 60 && timeout 50 python3 blocked.py --warm-s 3 --out "$R/b4k" -- $P --variants $DEF,$B --prompts 4096 --rows 4 --reps 5 --rounds 5 --abba > "$R/b4k.txt" 2>&1
el "blocked 4k rc=$?"; save
left 50 && timeout $(( END - 45 - $(date +%s) + s )) python3 blocked.py --warm-s 3 --out "$R/b16k" -- $P --variants $DEF,$B --prompts 16384 --rows 1 --reps 5 --rounds 5 --abba > "$R/b16k.txt" 2>&1
el "blocked 16k rc=$?"
python3 ab_report.py --skip 1 "$R/b4k" "$R/b16k" > "$R/ab.md" 2>&1
python3 blocked_report.py "$R/b4k" "$R/b16k" > "$R/report.md" 2>&1
sed -n '1,20p' "$R/ab.md"
save
# --- 2. ncu of B: one launch each of Vicuna-7B l15 and l27 at 4k x 4
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
if left 40; then
  M=sm__cycles_active.avg,gpc__cycles_elapsed.max,sm__ctas_launched.sum
  timeout $(( END - 5 - $(date +%s) + s )) "$NCU" --clock-control none --section SpeedOfLight --section WarpStateStats --section SourceCounters --metrics $M -f \
    -k regex:'moa_prefill_bf16_hd128_l(15|27)$' --launch-count 2 -o "$R/ncu1" \
    ./bench_prefill plans/vicuna7b.json:32 --variants $B --layers-only 15,27 --prompts 4096 --rows 4 --reps 1 --warmups 0 --out "$R/ncu_bench1.jsonl" > "$R/ncu1.log" 2>&1
  el "ncu rc=$?"
  if [ -s "$R/ncu1.ncu-rep" ]; then
    "$NCU" --import "$R/ncu1.ncu-rep" --page details --csv > "$R/ncu_details1.csv" 2>/dev/null
    "$NCU" --import "$R/ncu1.ncu-rep" --page source --csv --print-source sass > "$R/ncu_source1.csv" 2>/dev/null
    gzip -f "$R"/ncu_*1.csv; rm -f "$R/ncu1.ncu-rep"
  fi
fi
el done; save
