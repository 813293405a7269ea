#!/bin/bash
# s22-prefill's device call (run tool timeout_s 260), from the repository root:
#   bash .dev-s22-prefill/call1.sh
# Letter `x` existed at 701610c only (measured here and removed: benches/RESULTS.md,
# "Session 22 (branch s22-prefill"); build the binaries and cubins at that commit to rerun.
# Carry .dev-s22-prefill/ (benches/prefill/s22/pack.sh). Everything comes back as
# $OUT/results.tgz. Cubins, built here with NVRTC (see pack.sh).
#
# DEF = 3x64x1owghvuncafbdm (main's bf16 default at head_dim 128: `t` on the narrow layers,
# one block per query tile elsewhere), X = DEF + `x` (early query-tile switch in the
# persistent blocks: the producer claims the next query tile one tile ahead, the last
# consumer warpgroup hands its last turn on at once; on the one-tile layers X's kernel is
# DEF's: an A/A control), TX = 3x64x1owghvunctfbdxm (`t` + `x` on every layer; on the narrow
# layers TX's kernel is X's: a second A/A).
#
# PREDICTIONS (before the call):
#  0. `x` changes no arithmetic: --compare X and TX vs DEF max diff 0.0 (Vicuna-7B l0, l21
#     one-tile, l22, l27 `t`; Llama-3-8B l24 one-tile, l29 `t`); cuda_check bf16 with TX
#     (x on every layer) = DEF's maxima (2.063e-3 Llama-3-8B, 2.075e-3 Vicuna-7B); memcheck /
#     racecheck clean on fixture-gqa and its 160-token-sink copy with 2x64x1owghvunctbdx. No
#     hang (every turn matched: the first warpgroup takes the last one's final turn at the
#     end mark).
#  1. X / DEF in blocks on the `t` layers: `t`'s fixed cost (2.56 us a query tile, session
#     21's fit) falls toward the one-tile kernel's 1.87 (the producer's atomic round trip,
#     ~0.4-0.8 us, leaves the path from a query tile's last K/V copy to its hand-over and
#     to the next Q copy; the last warpgroup's P.V latency leaves the turn chain): ~0.5 us
#     a query tile, i.e. X / DEF 0.97-0.99 on the narrow 4k layers (Vicuna-7B l27 ~0.975),
#     0.99-1.00 at 16k; one-tile layers 1.00 (same kernel). Cells it brings in (budget's
#     last column <= ~0.5 us): Llama-3-8B 4k l23, l25, l27 (0.23-0.34), Vicuna-7B 16k l28
#     (0.58, borderline), Llama-3-8B 16k l31 (0.08); not Vicuna-7B 4k l24 (0.73).
#  2. TX / DEF on the wide (one-tile) layers: with x, `t`'s fixed cost ~ the one-tile's,
#     but `t` costs ~1-2% a key tile: 0.99-1.01 on Vicuna-7B's 4k one-tile layers, 1.00-1.02
#     on Llama-3-8B 4k and at 16k. l21 (Vicuna 4k, 1.160 engine form) would come in only if
#     TX / DEF <= 0.99 there.
D=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
END=${END:-235}
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
X=3x64x1owghvuncafbdxm
TX=3x64x1owghvunctfbdxm
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
export MOA_CUBIN_DIR=$D/cubins
# --- 0a. smoke + same outputs (a hang here stops the timings)
timeout 30 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF,$X,$TX --layers-only 0,21,22,27 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_v.jsonl" > "$R/compare_v.txt" 2>&1
rc_v=$?
timeout 20 ./bench_prefill plans/llama3_8b.json:8 --variants $DEF,$X,$TX --layers-only 24,29 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_l.jsonl" > "$R/compare_l.txt" 2>&1
rc_l=$?
el "compare rc=$rc_v,$rc_l"
grep -ho '"max_diff_vs_first":[^,]*' "$R"/compare_*.jsonl | sort | uniq -c
save
# --- 0b. correctness, in parallel
( timeout 40 "$SAN" --tool memcheck ./bench_prefill plans/vicuna7b.json:32 --variants $X --layers-only 22,27 --prompts 700 --rows 3 --reps 1 --warmups 0 --out "$R/san_bench.jsonl" > "$R/san_memcheck_bench.txt" 2>&1; echo "rc=$?" >> "$R/san_memcheck_bench.txt" ) &
( timeout 90 ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 --prefill-variant $TX > "$R/c_llama.txt" 2>&1; echo "rc=$?" >> "$R/c_llama.txt" ) &
( timeout 90 ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 --prefill-variant $TX > "$R/c_vicuna.txt" 2>&1; echo "rc=$?" >> "$R/c_vicuna.txt" ) &
v=2x64x1owghvunctbdx
for f in fixture-gqa fixture-gqa-sink160; do
  ( for tool in memcheck racecheck; do
      timeout 45 "$SAN" --tool $tool ./cuda_check plans/$f.toml --dtypes bf16 --prefill-variant $v > "$R/san_${tool}_${f}_$v.txt" 2>&1; echo "rc=$?" >> "$R/san_${tool}_${f}_$v.txt"
    done ) &
done
wait
el "checks"
tail -n 3 "$R"/c_*.txt
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|^rc=" "$R"/san_*.txt | sort | uniq -c
save
if [ "$rc_v" != 0 ]; then el "compare failed: no timings"; save; exit 0; fi
# --- 1. blocks beside SDPA: 4k x 4 then 16k x 1, three variants, ABBA, warm-up first
left 80 && timeout 70 python3 blocked.py --warm-s 3 --out "$R/b4k" -- $P --variants $DEF,$X,$TX --prompts 4096 --rows 4 --reps 5 --rounds 9 --abba > "$R/b4k.txt" 2>&1
el "blocked 4k rc=$?"; save
left 40 && timeout $(( END - 8 - $(date +%s) + s )) python3 blocked.py --warm-s 2 --out "$R/b16k" -- $P --variants $DEF,$X,$TX --prompts 16384 --rows 1 --reps 5 --rounds 5 --abba > "$R/b16k.txt" 2>&1
el "blocked 16k rc=$?"
python3 ab_report.py --skip 1 "$R/b4k" "$R/b16k" > "$R/ab.md" 2>&1
sed -n '1,14p' "$R/ab.md"
el done; save
