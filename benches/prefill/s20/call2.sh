#!/bin/bash
# s20-prefill's second device call (run tool timeout_s 170), from the repository root:
#   bash .dev-s20-prefill/call2.sh
# Carry .dev-s20-prefill/ (benches/prefill/s20/pack.sh with NEW=/tmp/s20p/cubins2). Cubins:
#   cuda_cubins --out /tmp/s20p/cubins2 --from /tmp/s20p/cubins --dtypes bf16 \
#       --prefill-variants 3x64x1owghvuncafbdm,3x64x1owghvuncafbdlm --upstream v:32:$V --upstream l:8:$L
#   cuda_cubins --out /tmp/s20p/cubins2 --dtypes bf16 --prefill-variants 2x64x1owghvunctbdl \
#       plans/fixture-gqa.toml benches/prefill/s12/fixture-gqa-sink160.toml
#
# (Run at 86a826a; `l` was removed after this call: RESULTS "Session 20", call 2.)
# A = 3x64x1owghvuncafbdm (call 1's D), L = A + `l` (late epilogue on the narrow, `t`, layers:
# the next query tile's first Q·Kᵀ issued before the current tile's epilogue; the wide layers'
# kernels are A's, so they are an A/A control).
#
# PREDICTIONS (before the call):
#  0. --compare L vs A max diff 0.0 (same arithmetic) on Vicuna-7B l2, l27 and Llama-3-8B l29;
#     cuda_check bf16 with L 2.063e-3 / 2.075e-3; memcheck / racecheck clean on fixture-gqa and
#     its 160-token-sink copy with 2x64x1owghvunctbdl; no hang (the simulation's `l` order).
#  SHORT=1 (the form run, the session's device time being short): the compare, 5 ABBA rounds
#  at 4k x 4, then memcheck and racecheck on fixture-gqa only; no cuda_check, no 16k.
#  1. In blocks (ABBA): L / A on the narrow layers 0.97-0.99 at 4k x 4 (the epilogue, ~1-1.5 us
#     of a query tile's ~18 us, off the turns' chain), 0.99-1.00 at 16k x 1; the wide layers
#     1.00 within the A/A spread.
D=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
END=${END:-150}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "$OUT/results.tgz" -C "$R" .; }
cd "$D" || exit 1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include PYTHONUNBUFFERED=1
rm -rf cubins; mkdir -p cubins && tar xJf cubins.tar.xz -C cubins
for b in bench_prefill cuda_check; do gunzip -f $b.gz; chmod +x $b; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader > "$R/env.txt" 2>&1
el "start, $(ls cubins | wc -l) cubins"
A=3x64x1owghvuncafbdm
L=3x64x1owghvuncafbdlm
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
export MOA_CUBIN_DIR=$D/cubins
timeout 25 ./bench_prefill plans/vicuna7b.json:32 --variants $A,$L --layers-only 2,27 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_v.jsonl" > "$R/compare_v.txt" 2>&1
rc_v=$?
timeout 20 ./bench_prefill plans/llama3_8b.json:8 --variants $A,$L --layers-only 29 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_l.jsonl" > "$R/compare_l.txt" 2>&1
rc_l=$?
el "compare rc=$rc_v,$rc_l"
grep -ho '"max_diff_vs_first":[^,]*' "$R"/compare_*.jsonl | sort | uniq -c
save
if [ "$rc_v" != 0 ]; then el "compare failed: no timings"; save; exit 0; fi
timeout 45 python3 blocked.py --warm-s 3 --out "$R/b4k" -- $P --variants $A,$L --prompts 4096 --rows 4 --reps 5 --rounds ${ROUNDS:-7} --abba > "$R/b4k.txt" 2>&1
el "blocked 4k rc=$?"; save
if [ -n "$SHORT" ]; then
  for tool in memcheck racecheck; do
    timeout 20 "$SAN" --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant 2x64x1owghvunctbdl > "$R/san_${tool}_fixture-gqa.txt" 2>&1; echo "rc=$?" >> "$R/san_${tool}_fixture-gqa.txt"
  done
  grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|^rc=" "$R"/san_*.txt | sort | uniq -c
  python3 ab_report.py --skip 1 "$R/b4k" > "$R/ab.md" 2>&1
  sed -n '1,8p' "$R/ab.md"
  el done; save; exit 0
fi
( timeout 60 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $L > "$R/c_llama.txt" 2>&1; echo "rc=$?" >> "$R/c_llama.txt" ) &
( timeout 60 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 --prefill-variant $L > "$R/c_vicuna.txt" 2>&1; echo "rc=$?" >> "$R/c_vicuna.txt" ) &
( for f in fixture-gqa fixture-gqa-sink160; do for tool in memcheck racecheck; do
    timeout 30 "$SAN" --tool $tool ./cuda_check plans/$f.toml --dtypes bf16 --prefill-variant 2x64x1owghvunctbdl > "$R/san_${tool}_${f}.txt" 2>&1; echo "rc=$?" >> "$R/san_${tool}_${f}.txt"
  done; done ) &
wait
el "checks"
tail -n 2 "$R"/c_*.txt
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|^rc=" "$R"/san_*.txt | sort | uniq -c
save
left 40 && timeout $(( END - 8 - $(date +%s) + s )) python3 blocked.py --warm-s 2 --out "$R/b16k" -- $P --variants $A,$L --prompts 16384 --rows 1 --reps 5 --rounds 3 --abba > "$R/b16k.txt" 2>&1
el "blocked 16k rc=$?"
python3 ab_report.py --skip 1 "$R/b4k" "$R/b16k" > "$R/ab.md" 2>&1
sed -n '1,10p' "$R/ab.md"
el done; save
