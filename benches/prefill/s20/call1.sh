#!/bin/bash
# s20-prefill's device call (run tool timeout_s 230), from the repository root:
#   bash .dev-s20-prefill/call1.sh
# Carry .dev-s20-prefill/ (benches/prefill/s20/pack.sh). Everything comes back as
# $OUT/results.tgz. Cubins, built here with NVRTC:
#   cuda_cubins --out /tmp/s20p/cubins --from <main's default cubins> --dtypes bf16 \
#       --prefill-variants 3x64x1owghvuncafbm,3x64x1owghvuncafbdm --upstream v:32:$V --upstream l:8:$L
#   cuda_cubins --out /tmp/s20p/cubins --dtypes bf16 --prefill-variants 2x64x1owghvuncbd,2x64x1owghvunctbd \
#       plans/fixture-gqa.toml benches/prefill/s12/fixture-gqa-sink160.toml
#
# DEF = 3x64x1owghvuncafbm (main's bf16 default; narrow layers `…unctfbm`), D = DEF + `d`
# (own bands: each consumer warpgroup takes sections only for its own 64 rows' key tiles,
# counted on its own; the producer hands a landed tile over before blocking on a slot).
#
# PREDICTIONS (before the call):
#  0. D changes no arithmetic on the tiles a row sees (the skipped tiles are fully masked
#     for the warpgroup's rows): --compare D vs DEF max diff 0.0 on Vicuna-7B l0, l2 (t), l15,
#     l27 (t) and Llama-3-8B l15, l29 (t); cuda_check bf16 with D = DEF's maxima (2.063e-3
#     Llama-3-8B, 2.075e-3 Vicuna-7B); memcheck / racecheck clean on fixture-gqa (hd 64,
#     2 warpgroups) and its 160-token-sink copy (3 sink tiles: the general sink loop). No
#     hang (benches/prefill/s20/d_schedule_sim.py: 17 820 simulated cases deadlock-free).
#  1. In blocks (3 s of SDPA first, ABBA, pass 0 left out): the section count
#     (benches/prefill/s20/own_bands.py) predicts D / DEF on the narrow (`t`) layers
#     0.90-0.97 at 4k x 4 (Vicuna-7B l27 0.903) and 0.96-0.99 at 16k x 1, the one-tile layers
#     0.95-1.00 (Llama-3-8B) and 1.00 (Vicuna-7B's near-dense); I expect about two thirds
#     of it realized (the warpgroups' positions are skewed by 2, so with 4 stages the
#     producer leads the last warpgroup by ~1 section instead of ~3): l27 ~0.93, Vicuna-7B
#     4k sum ~0.96, Llama-3-8B 4k ~0.96, 16k sums ~0.99. Engine form: Vicuna-7B 4k layers
#     <= 1.15 16 -> ~19 of 32, worst l27 1.60 -> ~1.48.
#  2. ncu (D, Vicuna-7B l15 / l27 at 4k x 4): cycles of l27 ~0.93 of DEF's (s19 call 2's
#     B launch), l15 ~1.00.
D=$(cd "$(dirname "$0")" && pwd)
ROOT=$PWD
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
END=${END:-215}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "$OUT/results.tgz" -C "$R" .; }
cd "$D" || exit 1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include PYTHONUNBUFFERED=1
mkdir -p cubins && tar xJf cubins.tar.xz -C cubins
for b in bench_prefill cuda_check; do gunzip -f $b.gz; chmod +x $b; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader > "$R/env.txt" 2>&1
el "start, $(ls cubins | wc -l) cubins"
DEF=3x64x1owghvuncafbm
DD=3x64x1owghvuncafbdm
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
export MOA_CUBIN_DIR=$D/cubins
# --- 0a. smoke + same outputs (a hang here stops the timings)
timeout 30 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF,$DD --layers-only 0,2,15,27 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_v.jsonl" > "$R/compare_v.txt" 2>&1
rc_v=$?
timeout 20 ./bench_prefill plans/llama3_8b.json:8 --variants $DEF,$DD --layers-only 15,29 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_l.jsonl" > "$R/compare_l.txt" 2>&1
rc_l=$?
el "compare rc=$rc_v,$rc_l"
grep -ho '"max_diff_vs_first":[^,]*' "$R"/compare_*.jsonl | sort | uniq -c
save
# --- 0b. correctness, in parallel
( timeout 40 "$SAN" --tool memcheck ./bench_prefill plans/vicuna7b.json:32 --variants $DD --layers-only 2,15 --prompts 700 --rows 3 --reps 1 --warmups 0 --out "$R/san_bench.jsonl" > "$R/san_memcheck_bench.txt" 2>&1; echo "rc=$?" >> "$R/san_memcheck_bench.txt" ) &
( timeout 90 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $DD > "$R/c_llama.txt" 2>&1; echo "rc=$?" >> "$R/c_llama.txt" ) &
( timeout 90 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 --prefill-variant $DD > "$R/c_vicuna.txt" 2>&1; echo "rc=$?" >> "$R/c_vicuna.txt" ) &
for v in 2x64x1owghvuncbd 2x64x1owghvunctbd; do
  ( for f in fixture-gqa fixture-gqa-sink160; do for tool in memcheck racecheck; do
      timeout 40 "$SAN" --tool $tool ./cuda_check plans/$f.toml --dtypes bf16 --prefill-variant $v > "$R/san_${tool}_${f}_$v.txt" 2>&1; echo "rc=$?" >> "$R/san_${tool}_${f}_$v.txt"
    done; done ) &
done
wait
el "checks"
tail -n 3 "$R"/c_*.txt
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|^rc=" "$R"/san_*.txt | sort | uniq -c
save
if [ "$rc_v" != 0 ]; then el "compare failed: no timings"; save; exit 0; fi
# --- 1. blocks beside SDPA: 4k x 4 then 16k x 1, DEF and D, ABBA, warm-up first
left 60 && timeout 45 python3 blocked.py --warm-s 3 --out "$R/b4k" -- $P --variants $DEF,$DD --prompts 4096 --rows 4 --reps 5 --rounds 7 --abba > "$R/b4k.txt" 2>&1
el "blocked 4k rc=$?"; save
left 45 && timeout $(( END - 15 - $(date +%s) + s )) python3 blocked.py --warm-s 3 --out "$R/b16k" -- $P --variants $DEF,$DD --prompts 16384 --rows 1 --reps 5 --rounds 5 --abba > "$R/b16k.txt" 2>&1
el "blocked 16k rc=$?"
python3 ab_report.py --skip 1 "$R/b4k" "$R/b16k" > "$R/ab.md" 2>&1
python3 blocked_report.py "$R/b4k" "$R/b16k" > "$R/report.md" 2>&1
sed -n '1,12p' "$R/ab.md"
save
# --- 2. ncu of D: one launch each of Vicuna-7B l15 and l27 at 4k x 4
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
if left 12; then
  M=sm__cycles_active.avg,gpc__cycles_elapsed.max,sm__ctas_launched.sum
  timeout $(( END - 5 - $(date +%s) + s )) "$NCU" --clock-control none --section SpeedOfLight --metrics $M -f \
    -k regex:'moa_prefill_bf16_hd128_l(15|27)$' --launch-count 2 -o "$R/ncu1" \
    ./bench_prefill plans/vicuna7b.json:32 --variants $DD --layers-only 15,27 --prompts 4096 --rows 4 --reps 1 --warmups 0 --out "$R/ncu_bench1.jsonl" > "$R/ncu1.log" 2>&1
  el "ncu rc=$?"
  if [ -s "$R/ncu1.ncu-rep" ]; then
    "$NCU" --import "$R/ncu1.ncu-rep" --page details --csv > "$R/ncu_details1.csv" 2>/dev/null
    gzip -f "$R"/ncu_details1.csv; rm -f "$R/ncu1.ncu-rep"
  fi
fi
el done; save
