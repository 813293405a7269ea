#!/bin/bash
# s23-prefill's third device call (run tool timeout_s 200), from the repository root:
#   bash .dev-s23-prefill/call3.sh
# Carry .dev-s23-prefill/ (benches/prefill/s23/pack.sh: cubins/ with DEF, H, HQ and Q on
# every layer of both plans; tr2/ = Vicuna-7B l27's H, Q and HQ kernels with the clock64
# trace, stored under the plain sources' keys). Everything comes back as $OUT/results.tgz.
#
# Call 2 found HQ / DEF 0.971-0.972 on the `t` layers at 4k x 4 (0.995-0.998 at 16k x 1)
# and H / DEF 1.001-1.006: the lean Q copy is what pays. This call times Q alone.
#
# PREDICTIONS (before the call):
#  0. --compare Q and HQ vs DEF: max diff 0.0 on the six layers.
#  1. Q / DEF on the `t` layers at 4k x 4 = HQ's within the noise: 0.965-0.98 (H neutral in
#     call 2), at 16k x 1 0.99-1.00; one-tile layers 1.00 (the same kernels).
#  2. trace (l27, 4k x 4): the producer's claim -> Q issued falls from ~2800 cycles (DEF,
#     call 1) to ~1300 (Q, HQ); the tile period falls by about that (~1500 cycles: 4%), the
#     excess over the rounds from ~5800 to ~4300; with H the last warpgroup's last band
#     tile is no longer late (~0) but its tiles then wait for Q (the next tile's first
#     section later by the same amount), which is why H alone did not pay.
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
gunzip -f bench_prefill.gz; chmod +x bench_prefill
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader > "$R/env.txt" 2>&1
el "start, $(ls cubins/cubins | wc -l) cubins"
DEF=3x64x1owghvuncafbdm
H=3x64x1owghvuncafbdHm
Q=3x64x1owghvuncafbdQm
HQ=3x64x1owghvuncafbdHQm
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
export MOA_CUBIN_DIR=$D/cubins/cubins
# --- 0. same outputs
timeout 30 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF,$Q,$HQ --layers-only 0,21,22,27 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_v.jsonl" > "$R/compare_v.txt" 2>&1
rc_v=$?
timeout 20 ./bench_prefill plans/llama3_8b.json:8 --variants $DEF,$Q,$HQ --layers-only 24,29 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_l.jsonl" > "$R/compare_l.txt" 2>&1
el "compare rc=$rc_v,$?"
grep -ho '"max_diff_vs_first":[^,]*' "$R"/compare_*.jsonl | sort | uniq -c
save
# --- 1. traces of l27 (4k x 4) with H, Q, HQ
export MOA_CUBIN_DIR=$D/cubins/tr2
for v in $H $Q $HQ; do
  timeout 25 ./bench_prefill plans/vicuna7b.json:32 --variants $v --layers-only 27 --prompts 4096 --rows 4 --reps 20 --warmups 1 \
    --trace-out "$R/trace.txt" --out "$R/trace_bench_$v.jsonl" >> "$R/trace_bench.txt" 2>&1
  el "trace $v rc=$?"
done
gzip -f "$R/trace.txt"; save
export MOA_CUBIN_DIR=$D/cubins/cubins
if [ "$rc_v" != 0 ]; then el "compare failed: no timings"; save; exit 0; fi
# --- 2. blocks beside SDPA: 4k x 4 then 16k x 1, DEF, Q, HQ, ABBA
left 80 && timeout 75 python3 blocked.py --warm-s 3 --out "$R/b4k" -- $P --variants $DEF,$Q,$HQ --prompts 4096 --rows 4 --reps 5 --rounds 9 --abba > "$R/b4k.txt" 2>&1
el "blocked 4k rc=$?"; save
left 40 && timeout $(( END - 8 - $(date +%s) + s )) python3 blocked.py --warm-s 2 --out "$R/b16k" -- $P --variants $DEF,$Q,$HQ --prompts 16384 --rows 1 --reps 5 --rounds 5 --abba > "$R/b16k.txt" 2>&1
el "blocked 16k rc=$?"
python3 ab_report.py --skip 1 "$R/b4k" "$R/b16k" > "$R/ab.md" 2>&1
sed -n '1,14p' "$R/ab.md"
el done; save
