#!/bin/bash
# s25-prefill's second device call, NOT RUN by the helper (its device cap was spent on call 1):
# ready for the lead if device time is left (run tool timeout_s 200; ~110 s of command,
# ~170-200 s held on a fresh machine), from the repository root:
#   bash .dev-s25-prefill/call2.sh
# Carry .dev-s25-prefill/ (benches/prefill/s25/pack.sh with NEW=/tmp/s25p2 at 6bb87ba: cubins/
# = both upstream plans' modules in bf16 with DEF and P, fixture-gqa with 2x64x1owghvunctbdHQP;
# tr/ = Vicuna-7B l27's DEF and P kernels with benches/prefill/s25/trace_patch.py's trace).
# Everything comes back as $OUT/results.tgz.
#
# DEF = 3x64x1owghvuncafbdHQm (the default). P = DEF + `P` in its second form (6bb87ba): the
# staged output copied out and the Q tile released at the next query tile's section 0, BEFORE
# its first K/V tile's wait (warpgroup 0 waits there ~900 cycles, the others wait for their
# first turn), not under section 0's Q·Kᵀ as in call 1 (e9ac87f), where it took ~1150 cycles
# and lengthened warpgroup 0's first round by what its epilogue lost.
#
# PREDICTIONS (before the call; call 1's trace of DEF at l27: wg0 P.V done -> staged 1408,
# staged -> written 886, then band end 518, Q wait 630, geometry -> s0 tile landed 866;
# P's first form: wg0 last turn -> next s0 turn 5102 -> 4570, period 35048 -> 34931):
#  0. --compare P vs DEF 0.0 on the six layers; cuda_check bf16 with P = 2.063e-3 / 2.075e-3;
#     memcheck 0 errors, racecheck 0 hazards on fixture-gqa with 2x64x1owghvunctbdHQP.
#  1. trace l27: wg0 P.V done -> output written ~1560 (as call 1's P), geometry -> previous
#     output copied ~900-1100, geometry -> s0 tile landed ~1000-1200 (the copy overruns the
#     tile's wait by ~200-300), wg0 last turn -> next s0 turn ~4800, period ~300 cycles
#     shorter than DEF's (~1% of l27's query tile), excess ~3400 -> ~3050.
#  2. blocks: P / DEF on the `t` layers 0.985-1.000 at 4k x 4 (median ~0.992), 0.995-1.005
#     at 16k x 1; one-tile layers 1.00 (A/A). No new cell beyond the A/A.
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
