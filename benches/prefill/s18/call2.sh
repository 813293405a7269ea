#!/bin/bash
# s18-prefill's second device call (on a warm machine; run tool timeout_s 90), from the
# repository root: bash .dev-s18-prefill/call2.sh. Call 1's blocked runs timed out: its
# bench_prefill generated the prefill modules with DecodeTuning::default() where cuda_cubins
# uses the group's default, so no module found its cubin and each plan went through NVRTC and
# the driver's JIT (70 s for Vicuna-7B at 4k). Fixed; everything loads from cubins here.
# The rows call 1 lacks, in blocks with SDPA blocks between, DEF / I / Y as in call 1:
#   4k x 4 both plans (2 passes), 16k x 1 Llama-3-8B, then Vicuna-7B again (from cubins).
# PREDICTIONS: as call1.sh; setup per plan < 10 s; Vicuna-7B 16k rows from cubins within
# 0.97-1.03 of call 1's driver-JIT rows.
D=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( ${END:-66} - $1 )) ]; }
save() { tar czf "$OUT/results.tgz" -C "$R" .; }
cd "$D" || exit 1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include PYTHONUNBUFFERED=1
rm -rf cubins; mkdir -p cubins && tar xJf cubins.tar.xz -C cubins
gunzip -f bench_prefill.gz; chmod +x bench_prefill
export MOA_CUBIN_DIR=$D/cubins
VS=3x64x1owghvuncafm,3x64x1owghvuncafi,3x64x1owghvuncafym
el start
timeout 30 python3 blocked.py --out "$R/b4k" -- plans/vicuna7b.json:32 plans/llama3_8b.json:8 --variants $VS --prompts 4096 --rows 4 --reps 5 --rounds 2 > "$R/b4k.txt" 2>&1
el "4k rc=$?"; save
left 14 && timeout 18 python3 blocked.py --out "$R/b16kl" -- plans/llama3_8b.json:8 --variants $VS --prompts 16384 --rows 1 --reps 5 --rounds 2 > "$R/b16kl.txt" 2>&1
el "16k llama rc=$?"; save
left 14 && timeout $(( ${END:-66} - $(date +%s) + s )) python3 blocked.py --out "$R/b16kv" -- plans/vicuna7b.json:32 --variants $VS --prompts 16384 --rows 1 --reps 5 --rounds 2 > "$R/b16kv.txt" 2>&1
el "16k vicuna rc=$?"
python3 blocked_report.py "$R/b4k" "$R/b16kl" "$R/b16kv" > "$R/report.md" 2>&1
sed -n '/## moa/,/## Layers/p' "$R/report.md" | head -40
save
