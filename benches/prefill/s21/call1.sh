#!/bin/bash
# s21-prefill's device call (run tool timeout_s 235), from the repository root:
#   bash .dev-s21-prefill/call1.sh
# Carry .dev-s21-prefill/ (benches/prefill/s21/pack.sh). Everything comes back as
# $OUT/results.tgz. Cubins, built here with NVRTC (see pack.sh).
#
# DEF = 3x64x1owghvuncafbdm (main's bf16 default at head_dim 128: `t` on the narrow layers,
# one block per query tile elsewhere), Z = DEF + `z` (5-stage K/V ring in the one-tile
# kernel; `t` keeps 4, so on the narrow layers Z's kernel is DEF's: an A/A control),
# ONE = 3x64x1owghvuncfbdm (one block per query tile on every layer), T = 3x64x1owghvunctfbdm
# (`t` on every layer). On each layer DEF's kernel is ONE's or T's (another A/A control).
#
# PREDICTIONS (before the call):
#  0. Z changes no arithmetic: --compare Z vs DEF max diff 0.0 (Vicuna-7B l0, l15, l18, l21
#     one-tile, l27 `t`; Llama-3-8B l15, l24); cuda_check bf16 with Z = DEF's maxima
#     (2.063e-3 Llama-3-8B, 2.075e-3 Vicuna-7B); memcheck / racecheck clean on fixture-gqa
#     and its 160-token-sink copy with 2x64x1owghvuncbdz and …unctbdz (head_dim 64: 5 stages
#     in both forms). No hang (benches/prefill/s21/ring5_sim.py: 9 900 cases deadlock-free).
#  1. Z / DEF in blocks: the narrow (`t`) layers 1.00 (same kernel); the one-tile layers
#     with mixed windows (Vicuna-7B l3, l5, l6, l16, l18-l21; Llama-3-8B's) 0.985-0.995 at
#     4k x 4 (with `d` the producer leads the last warpgroup by ~1 section at 4 stages, ~2 at
#     5, and Vicuna-7B's K/V tiles come from DRAM: its section rate is ~5% under
#     Llama-3-8B's, benches/prefill/s21/narrow_budget.md), the near-dense layers 0.99-1.00;
#     16k x 1 0.995-1.00. Sums: Vicuna-7B 4k ~0.993, Llama-3-8B 4k ~0.996, 16k ~0.998.
#  2. T / ONE (which form each layer should take, `a`'s rule at span share 0.4 at 16k):
#     narrow layers 0.98-1.00 at 4k x 4 (`t` still pays there, but `b` cut the one-tile
#     kernel's fixed cost more than `t`'s: session 20's fit gives one-tile F 1.7 us, `t`
#     3.0 us a query tile), 1.00-1.01 at 16k x 1; wide layers 1.00-1.02 (`t` costs ~2% a key
#     tile, session 12). So I expect `a`'s rule to stay where it is.
D=$(cd "$(dirname "$0")" && pwd)
ROOT=$PWD
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
END=${END:-220}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "$OUT/results.tgz" -C "$R" .; }
cd "$D" || exit 1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include PYTHONUNBUFFERED=1
mkdir -p cubins && tar xJf cubins.tar.xz -C cubins
for b in bench_prefill cuda_check; do gunzip -f $b.gz; chmod +x $b; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader > "$R/env.txt" 2>&1
el "start, $(ls cubins | wc -l) cubins"
DEF=3x64x1owghvuncafbdm
Z=3x64x1owghvuncafbdzm
ONE=3x64x1owghvuncfbdm
T=3x64x1owghvunctfbdm
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
export MOA_CUBIN_DIR=$D/cubins
# --- 0a. smoke + same outputs (a hang here stops the timings)
timeout 30 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF,$Z --layers-only 0,15,18,21,27 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_v.jsonl" > "$R/compare_v.txt" 2>&1
rc_v=$?
timeout 20 ./bench_prefill plans/llama3_8b.json:8 --variants $DEF,$Z --layers-only 15,24 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_l.jsonl" > "$R/compare_l.txt" 2>&1
rc_l=$?
el "compare rc=$rc_v,$rc_l"
grep -ho '"max_diff_vs_first":[^,]*' "$R"/compare_*.jsonl | sort | uniq -c
save
# --- 0b. correctness, in parallel
( timeout 40 "$SAN" --tool memcheck ./bench_prefill plans/vicuna7b.json:32 --variants $Z --layers-only 15,18 --prompts 700 --rows 3 --reps 1 --warmups 0 --out "$R/san_bench.jsonl" > "$R/san_memcheck_bench.txt" 2>&1; echo "rc=$?" >> "$R/san_memcheck_bench.txt" ) &
( timeout 90 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $Z > "$R/c_llama.txt" 2>&1; echo "rc=$?" >> "$R/c_llama.txt" ) &
( timeout 90 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 --prefill-variant $Z > "$R/c_vicuna.txt" 2>&1; echo "rc=$?" >> "$R/c_vicuna.txt" ) &
for v in 2x64x1owghvuncbdz 2x64x1owghvunctbdz; do
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
# --- 1. blocks beside SDPA: 4k x 4 then 16k x 1, four variants, ABBA, warm-up first
left 70 && timeout 60 python3 blocked.py --warm-s 3 --out "$R/b4k" -- $P --variants $DEF,$Z,$ONE,$T --prompts 4096 --rows 4 --reps 5 --rounds 7 --abba > "$R/b4k.txt" 2>&1
el "blocked 4k rc=$?"; save
left 40 && timeout $(( END - 8 - $(date +%s) + s )) python3 blocked.py --warm-s 2 --out "$R/b16k" -- $P --variants $DEF,$Z,$ONE,$T --prompts 16384 --rows 1 --reps 5 --rounds 5 --abba > "$R/b16k.txt" 2>&1
el "blocked 16k rc=$?"
python3 ab_report.py --skip 1 "$R/b4k" "$R/b16k" > "$R/ab.md" 2>&1
sed -n '1,14p' "$R/ab.md"
el done; save
