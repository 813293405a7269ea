#!/bin/bash
# s25-prefill's device call (run tool timeout_s 200), from the repository root:
#   bash .dev-s25-prefill/call1.sh
# Carry .dev-s25-prefill/ (benches/prefill/s25/pack.sh: bench_prefill and cuda_check gzipped;
# cubins/ = both upstream plans' modules in bf16 with DEF and P, fixture-gqa with the 2x64
# HQ / HQP forms at head_dim 64; tr/ = Vicuna-7B l27's DEF and P kernels with the clock64
# trace of benches/prefill/s25/trace_patch.py under the plain keys).
# Everything comes back as $OUT/results.tgz.
#
# DEF = 3x64x1owghvuncafbdHQm (main's bf16 default at head_dim 128; `t` on the narrow
# layers). P = DEF + `P`: each consumer warp stages its output rows (stmatrix) in the
# epilogue as before, but copies them out to global memory and releases the Q tile in the
# next query tile's section 0, under its Q·Kᵀ (after the loop for the block's last tile).
#
# PREDICTIONS (before the call; session 24's trace of DEF at l27: warpgroup 0's P.V done ->
# output written ~2030 cycles, then ~620 band-end release, ~670 to the next geometry (its
# wait for Q), ~860 to section 0's tile; producer claim -> Q issued ~2180, Q issued -> wg0's
# geometry ~2650, both while the three warpgroups' epilogues store 48 KiB):
#  0. --compare P vs DEF max diff 0.0 on the six layers; cuda_check bf16 with P = DEF's
#     maxima (Llama-3-8B 2.063e-3, Vicuna-7B 2.075e-3); memcheck 0 errors and racecheck 0
#     hazards on fixture-gqa with 2x64x1owghvunctbdHQP.
#  1. trace of l27 (4k x 4): DEF's epilogue splits ~1100 (normalize, stmatrix) + ~900 (the
#     copy out); with P the epilogue ends after the staging (~1100), the copy out costs
#     ~300-600 cycles after section 0's turn, mostly under the Q·Kᵀ. If the stores slow
#     the producer's Q copy, claim -> Q issued 2180 -> ~1700 and Q issued -> wg0 geometry
#     2650 -> ~2200, excess over the rounds ~3000 -> ~2400; if they do not, warpgroup 0
#     only waits longer for Q (released -> geometry grows by what the epilogue lost) and
#     the excess stays.
#  2. In blocks (ABBA, 9 passes at 4k x 4, 5 at 16k x 1, pass 0 left out): P / DEF on the
#     `t` layers 0.985-1.000 at 4k x 4 (median ~0.99: ~600 cycles of a ~35 500-cycle
#     query tile), 0.995-1.000 at 16k x 1; one-tile layers 1.00 (the same kernels: A/A).
#     Engine form: DEF ~19-23 / 30-31 / 25-29 / 32 of 32 (the SDPA block); P adds at most
#     Vicuna-7B 4k l24 (0.30 us a query tile to go) and Vicuna-7B 16k l28 (0.18).
D=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
END=${END:-170}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "$OUT/results.tgz" -C "$R" .; }
cd "$D" || exit 1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include PYTHONUNBUFFERED=1
mkdir -p cubins && tar xJf cubins.tar.xz -C cubins
for b in bench_prefill cuda_check; do gunzip -f $b.gz; chmod +x $b; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader > "$R/env.txt" 2>&1
el "start, $(ls cubins/cubins | wc -l) cubins"
DEF=3x64x1owghvuncafbdHQm
PV=3x64x1owghvuncafbdHQPm
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
export MOA_CUBIN_DIR=$D/cubins/cubins
# --- 0a. smoke + same outputs (a hang here stops the timings)
timeout 30 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF,$PV --layers-only 0,21,22,27 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_v.jsonl" > "$R/compare_v.txt" 2>&1
rc_v=$?
timeout 20 ./bench_prefill plans/llama3_8b.json:8 --variants $DEF,$PV --layers-only 24,29 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_l.jsonl" > "$R/compare_l.txt" 2>&1
el "compare rc=$rc_v,$?"
grep -ho '"max_diff_vs_first":[^,]*' "$R"/compare_*.jsonl | sort | uniq -c
save
# --- 0b. correctness, in parallel: P (bf16) on both plans, the sanitizers on fixture-gqa
for pl in llama3_8b:8 vicuna7b:32; do n=${pl%%:*}; kv=${pl##*:}
  ( timeout 90 ./cuda_check --upstream plans/$n.json --kv-heads $kv --dtypes bf16 --prefill-variant $PV > "$R/c_P_$n.txt" 2>&1; echo "rc=$?" >> "$R/c_P_$n.txt" ) &
done
( v=2x64x1owghvunctbdHQP; for tool in racecheck memcheck; do
    timeout 60 "$SAN" --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $v > "$R/san_${tool}_$v.txt" 2>&1; echo "rc=$?" >> "$R/san_${tool}_$v.txt"
  done ) &
wait
el "checks"
tail -n 2 "$R"/c_*.txt
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|^rc=" "$R"/san_*.txt | sort | uniq -c
save
# --- 1. traces of l27 (4k x 4), DEF and P
export MOA_CUBIN_DIR=$D/cubins/tr
for v in $DEF $PV; do
  timeout 25 ./bench_prefill plans/vicuna7b.json:32 --variants $v --layers-only 27 --prompts 4096 --rows 4 --reps 20 --warmups 1 \
    --trace-out "$R/trace.txt" --out "$R/trace_bench_$v.jsonl" >> "$R/trace_bench.txt" 2>&1
  el "trace $v rc=$?"
done
gzip -f "$R/trace.txt"; save
export MOA_CUBIN_DIR=$D/cubins/cubins
if [ "$rc_v" != 0 ]; then el "compare failed: no timings"; save; exit 0; fi
# --- 2. blocks beside SDPA: 4k x 4 then 16k x 1, DEF and P, ABBA
left 75 && timeout 70 python3 blocked.py --warm-s 3 --out "$R/b4k" -- $P --variants $DEF,$PV --prompts 4096 --rows 4 --reps 5 --rounds 9 --abba > "$R/b4k.txt" 2>&1
el "blocked 4k rc=$?"; save
left 35 && timeout $(( END - 6 - $(date +%s) + s )) python3 blocked.py --warm-s 2 --out "$R/b16k" -- $P --variants $DEF,$PV --prompts 16384 --rows 1 --reps 5 --rounds 5 --abba > "$R/b16k.txt" 2>&1
el "blocked 16k rc=$?"
python3 ab_report.py --skip 1 "$R/b4k" "$R/b16k" > "$R/ab.md" 2>&1
sed -n '1,12p' "$R/ab.md"
el done; save
