#!/bin/bash
# s26-prefill's device call (run tool timeout_s 260), from the repository root:
#   bash .dev-s26-prefill/call1.sh
# Carry .dev-s26-prefill/ (benches/prefill/s26/pack.sh: bench_prefill and cuda_check gzipped;
# cubins/ = both upstream plans' modules in bf16 with DEF, R and P, fixture-gqa with the
# head_dim-64 forms FT, FO (bf16) and FH (f16); tr/ = Vicuna-7B l27's DEF and R kernels with
# benches/prefill/s26/trace_patch.py's clock64 trace under the plain keys).
# Everything comes back as $OUT/results.tgz.
#
# DEF = 3x64x1owghvuncafbdHQm (main's bf16 default at head_dim 128; `t` on the narrow layers).
# R = DEF + `R`: every consumer warp stores its output rows from the wgmma accumulators
# (a 4 x 4 word transpose in each quad: 32 shfl.xor a lane, then 8 16-byte stores) instead
# of staging them in the Q tile (8 stmatrix) and copying them out (8 LDS + 8 STG); one-tile
# AND `t` layers (so there is no one-tile A/A between DEF and R: the A/A is ab_report's
# odd/even passes of DEF, and P, whose one-tile kernels are DEF's).
# P = DEF + `P` (session 25's second form, 6bb87ba): measured again for the removal decision.
#
# MODEL AND PREDICTIONS (before the call). Session 25's trace of DEF at l27: a consumer warp's
# P.V done -> staged 1408 cycles (geometry, 1/l, packing, 8 stmatrix), staged -> written
# 886 (8 LDS + 8 STG); both slow because the shared-memory path is busy with the other
# warpgroups' wgmma operand reads (~450 of a section's ~555 MMA cycles). R takes out the 8
# stmatrix (~450-600) and the 8 LDS (~450) and adds 32 shuffles and ~64 selects (~300):
#  0. --compare R vs DEF (and P) max diff 0.0 on the six layers (the same bf16 values);
#     cuda_check bf16 with R = DEF's maxima (Llama-3-8B 2.063e-3, Vicuna-7B 2.075e-3);
#     fixture-gqa bf16 (FT, FO) and f16 (FH) pass; memcheck 0 errors, racecheck 0 hazards.
#  1. trace of l27 (4k x 4): wg0 P.V done -> written 2325 -> ~1700 (1400-1900); wg1, wg2
#     2172 / 2336 -> ~1550 / ~1700; prod Q issued -> wg0 geometry 2722 -> ~2500 (less
#     shared-memory traffic beside the Q copy, the stores remain); wg0 last turn -> next s0
#     turn 5102 -> ~4900 (it waits longer for tiles); period 35048 -> ~34800; excess
#     3383 -> ~3150.
#  2. blocks (ABBA with three variants, 9 passes at 4k x 4, 5 at 16k x 1, pass 0 left out):
#     R / DEF on the `t` layers 0.990-1.000 (median ~0.995) at 4k x 4, 0.995-1.002 at
#     16k x 1; on the one-tile layers (the block's last epilogue is its tail: ~600 of a
#     block's ~85 000 cycles, less contended) ~0.997; sum over every layer ~0.996. Likely
#     inside the A/A at 16k. P / DEF: as session 25 (within the noise, one-tile 1.000).
#     Engine cells: DEF ~19-23 / 28-31 / 25-29 / 32; R at most +1 on Vicuna-7B 4k (l24).
D=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
END=${END:-200}
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
RV=3x64x1owghvuncafbdHQRm
PV=3x64x1owghvuncafbdHQPm
FT=2x64x1owghvunctbdHQR
FO=2x64x1owghvuncbdR
FH=2x64x1owgncR
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
export MOA_CUBIN_DIR=$D/cubins/cubins
# --- 0a. smoke + same outputs (a hang here stops the timings)
timeout 30 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF,$RV,$PV --layers-only 0,21,22,27 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_v.jsonl" > "$R/compare_v.txt" 2>&1
rc_v=$?
timeout 20 ./bench_prefill plans/llama3_8b.json:8 --variants $DEF,$RV,$PV --layers-only 24,29 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_l.jsonl" > "$R/compare_l.txt" 2>&1
el "compare rc=$rc_v,$?"
grep -ho '"max_diff_vs_first":[^,]*' "$R"/compare_*.jsonl | sort | uniq -c
save
# --- 0b. correctness, in parallel: R (bf16) on both plans, the fixtures, the sanitizers
for pl in llama3_8b:8 vicuna7b:32; do n=${pl%%:*}; kv=${pl##*:}
  ( timeout 90 ./cuda_check --upstream plans/$n.json --kv-heads $kv --dtypes bf16 --prefill-variant $RV > "$R/c_R_$n.txt" 2>&1; echo "rc=$?" >> "$R/c_R_$n.txt" ) &
done
( timeout 60 ./cuda_check plans/fixture-gqa.toml --dtypes f16 --prefill-variant $FH > "$R/c_R_fixture_f16.txt" 2>&1; echo "rc=$?" >> "$R/c_R_fixture_f16.txt"
  for v in $FT $FO; do for tool in racecheck memcheck; do
    timeout 60 "$SAN" --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $v > "$R/san_${tool}_$v.txt" 2>&1; echo "rc=$?" >> "$R/san_${tool}_$v.txt"
  done; done ) &
wait
el "checks"
tail -n 2 "$R"/c_*.txt
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|^rc=" "$R"/san_*.txt | sort | uniq -c
save
# --- 1. traces of l27 (4k x 4), DEF and R
export MOA_CUBIN_DIR=$D/cubins/tr
for v in $DEF $RV; do
  timeout 25 ./bench_prefill plans/vicuna7b.json:32 --variants $v --layers-only 27 --prompts 4096 --rows 4 --reps 20 --warmups 1 \
    --trace-out "$R/trace.txt" --out "$R/trace_bench_$v.jsonl" >> "$R/trace_bench.txt" 2>&1
  el "trace $v rc=$?"
done
gzip -f "$R/trace.txt"; save
export MOA_CUBIN_DIR=$D/cubins/cubins
if [ "$rc_v" != 0 ]; then el "compare failed: no timings"; save; exit 0; fi
# --- 2. blocks beside SDPA: 4k x 4 then 16k x 1, DEF, R and P, ABBA (A B C / C B A)
left 100 && timeout 85 python3 blocked.py --warm-s 3 --out "$R/b4k" -- $P --variants $DEF,$RV,$PV --prompts 4096 --rows 4 --reps 5 --rounds 9 --abba > "$R/b4k.txt" 2>&1
el "blocked 4k rc=$?"; save
left 30 && timeout $(( END - 6 - $(date +%s) + s )) python3 blocked.py --warm-s 2 --out "$R/b16k" -- $P --variants $DEF,$RV,$PV --prompts 16384 --rows 1 --reps 5 --rounds 5 --abba > "$R/b16k.txt" 2>&1
el "blocked 16k rc=$?"
python3 ab_report.py --skip 1 "$R/b4k" "$R/b16k" > "$R/ab.md" 2>&1
sed -n '1,14p' "$R/ab.md"
el done; save
