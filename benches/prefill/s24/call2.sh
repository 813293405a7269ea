#!/bin/bash
# s24-prefill's second device call (run tool timeout_s 100), from the repository root:
#   bash .dev-s24-prefill/call2.sh
# Carry .dev-s24-prefill/ (benches/prefill/s24/pack.sh with NEW=/tmp/s24p2: cubins/ = DEF and
# L on every layer of both plans in bf16, fixture-gqa with 2x64x1owghvunctbdHQL; tr/ =
# Vicuna-7B l27's DEF and L kernels with the clock64 trace). Everything comes back as
# $OUT/results.tgz. Short (the device cap): no 16k x 1 blocks.
#
# DEF = 3x64x1owghvuncafbdHQm (the default), L = DEF + `L`: thread 0 claims with the
# third-to-last K/V copy, warp 0 prefetches the claimed tile's Q rows and first K/V tile into
# L2 (prefetch.global.L2) after the second-to-last.
#
# PREDICTIONS (before the call; call 1's trace of DEF: warpgroup 0 waits ~650 cycles for the
# next tile's Q and ~850 for its first K/V tile, the producer's Q issued ~4700 cycles after
# the last K/V copy, Q issued -> warpgroup 0's geometry ~2650, mostly the Q copy's latency):
#  0. --compare L vs DEF max diff 0.0; cuda_check bf16 with L on Llama-3-8B 2.063e-3;
#     racecheck 0 hazards, memcheck 0 errors on fixture-gqa with 2x64x1owghvunctbdHQL.
#  1. trace l27: Q issued -> warpgroup 0's geometry 2650 -> ~1800 (L2 instead of DRAM for Q
#     and the first K/V tile), warpgroup 0's two waits ~1500 -> ~600, excess ~3000 -> ~2200.
#  2. blocks at 4k x 4 (7 passes, ABBA, pass 0 left out): L / DEF on the `t` layers
#     0.975-0.99, one-tile layers 1.00 (A/A).
D=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/results.tgz" -C "$R" .; }
cd "$D" || exit 1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include PYTHONUNBUFFERED=1
mkdir -p cubins && tar xJf cubins.tar.xz -C cubins
for b in bench_prefill cuda_check; do gunzip -f $b.gz; chmod +x $b; done
el "start, $(ls cubins/cubins | wc -l) cubins"
DEF=3x64x1owghvuncafbdHQm
L=3x64x1owghvuncafbdHQLm
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
export MOA_CUBIN_DIR=$D/cubins/cubins
timeout 20 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF,$L --layers-only 0,22,27 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_v.jsonl" > "$R/compare_v.txt" 2>&1
rc_v=$?
timeout 15 ./bench_prefill plans/llama3_8b.json:8 --variants $DEF,$L --layers-only 24,29 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_l.jsonl" > "$R/compare_l.txt" 2>&1
el "compare rc=$rc_v,$?"
grep -ho '"max_diff_vs_first":[^,]*' "$R"/compare_*.jsonl | sort | uniq -c
( timeout 40 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $L > "$R/c_L_llama3_8b.txt" 2>&1; echo "rc=$?" >> "$R/c_L_llama3_8b.txt" ) &
( v=2x64x1owghvunctbdHQL; for tool in racecheck memcheck; do
    timeout 30 "$SAN" --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $v > "$R/san_${tool}_$v.txt" 2>&1; echo "rc=$?" >> "$R/san_${tool}_$v.txt"
  done ) &
wait
el checks; tail -n 2 "$R"/c_*.txt; grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|^rc=" "$R"/san_*.txt; save
export MOA_CUBIN_DIR=$D/cubins/tr
for v in $DEF $L; do
  timeout 15 ./bench_prefill plans/vicuna7b.json:32 --variants $v --layers-only 27 --prompts 4096 --rows 4 --reps 20 --warmups 1 \
    --trace-out "$R/trace.txt" --out "$R/trace_bench_$v.jsonl" >> "$R/trace_bench.txt" 2>&1
  el "trace $v rc=$?"
done
gzip -f "$R/trace.txt"; save
export MOA_CUBIN_DIR=$D/cubins/cubins
if [ "$rc_v" != 0 ]; then el "compare failed: no timings"; save; exit 0; fi
timeout 35 python3 blocked.py --warm-s 2 --out "$R/b4k" -- $P --variants $DEF,$L --prompts 4096 --rows 4 --reps 5 --rounds 7 --abba > "$R/b4k.txt" 2>&1
el "blocked 4k rc=$?"
python3 ab_report.py --skip 1 "$R/b4k" > "$R/ab.md" 2>&1
sed -n '1,8p' "$R/ab.md"
el done; save
