#!/bin/bash
# Session 36, branch s36-wide, call 1 (issue 8; one H200, CUDA only). Carry `.dev-s36-wide`
# (filled by benches/engine-h200/s36/wide/pack.sh: moa.gz and cuda_check.gz of the branch,
# cub.txz = MOA_CUBIN_DIR cubins built here with cuda_cubins, hf_decode.py and the plan
# wide-gqa64-hd256.toml of the branch, this script). Run tool: "END=215 bash
# .dev-s36-wide/call1.sh", timeout_s 228. Steps by priority, each skipped when its cap does
# not fit before END:
#  1. cuda_check --dtypes f32 on wide-gqa16 (16 / 1 KV, hd 64: 2 x 8), wide-gqa32 (32 / 1, hd 128:
#     4 x 8) and wide-gqa64-hd256 (64 / 1, hd 256: 8 x 8; refused in f32 before this branch,
#     330 752 bytes of shared memory), and the hd-256 plan in f16 / bf16 (the control).
#  2. moa bench --like llama-3-8b --kv-heads 2, then 1: dense and the upstream Llama-3-8B plan,
#     prompt 4096 and 16384, batch 16 and max (cap 1024), 10 new tokens, prefill of 4 rows.
#  3. HF static cache + torch.compile (benches/peers/hf_decode.py --kv-heads 1, then 2), 4096 x 16.
#  4. cuda_check --dtypes f32 on the Llama-3-8B plan with 2 and 1 KV heads (32 layers).
# MODEL / PREDICTION (written before the call):
#  1. every case passes, f32 max error ~1e-6..1e-5 (f32 storage; tolerance of f32 cases), f16
#     ~3.5e-4, bf16 ~2.05e-3 (the sub-grouped kernels equal the group-of-8 kernels).
#  2. The step at B = 16 is weight-bound (15.7 GB of weights with 2 KV heads, 15.6 with 1,
#     against 2.15 / 1.08 GB of dense KV at 4k, 8.6 / 4.3 at 16k); the attention of wide groups
#     reads each slot once per sub-group (2x at g16, 4x at MQA, the later reads from L2: s35-wide
#     measured 21-26 us a layer at B = 16 N = 5120). Predicted (copy ~3.95 TB/s):
#       kv 2, 4k:  dense 5.0-5.8 ms (78-90% of roofline), plan 4.8-5.6, plan/dense 1.02-1.08x
#       kv 2, 16k: dense 6.6-7.6 ms (80-92%), plan 5.6-6.6, plan/dense 1.10-1.25x
#       kv 1, 4k:  dense 4.9-5.7, plan 4.8-5.6, 1.00-1.06x
#       kv 1, 16k: dense 6.2-7.8 (MQA's 4 reads a slot cost most here), plan 5.4-6.6, 1.1-1.3x
#     max at 4k: dense kv 2 ~ 880 rows (capped at 1024: no), plan more; MQA both past 1024 (capped):
#     decode tok/s 15-30k, 85-105% of the copy roofline (large batches are KV-bound).
#  3. HF compiled at 4k x 16: 7-9 ms a step with repeat_kv copying K/V to 32 heads each layer;
#     moa dense 1.2-1.6x HF's tok/s.
#  4. pass, f32 max error ~1e-5.
D=$(cd "$(dirname "$0")" && pwd); R=${OUT:-/tmp}/r; mkdir -p "$R"
s=$(date +%s); END=${END:-215}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
cap() { local c=$(( END - ($(date +%s) - s) )); [ $c -gt $1 ] && c=$1; echo $c; }
pack() { tar czf "${OUT:-/tmp}/results.tgz" -C "$R" . 2>/dev/null; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* | head -1); ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
for b in moa cuda_check; do gunzip -c "$D/$b.gz" > /tmp/$b && chmod +x /tmp/$b; done
mkdir -p /tmp/cub && python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('/tmp/cub')" "$D/cub.txz" \
  && export MOA_CUBIN_DIR=/tmp/cub
el "start: $(ls /tmp/cub | wc -l) cubins"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used --format=csv > "$R/gpu.txt" 2>&1
L8=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
P=benches/lead-h200/s34/plans
# 1.
timeout $(cap 45) /tmp/cuda_check $P/wide-gqa16.toml $P/wide-gqa32.toml "$D/wide-gqa64-hd256.toml" --dtypes f32 \
  > "$R/check-wide-f32.txt" 2>&1; el "check f32 rc=$?"; tail -5 "$R/check-wide-f32.txt"
left 20 && { timeout $(cap 25) /tmp/cuda_check "$D/wide-gqa64-hd256.toml" --dtypes f16,bf16 > "$R/check-hd256-half.txt" 2>&1
  el "check hd256 f16,bf16 rc=$?"; tail -3 "$R/check-hd256-half.txt"; }
pack
# 2.
for kv in 2 1; do
  left 40 || { el "skip bench kv $kv"; continue; }
  timeout $(cap 80) /tmp/moa bench --like llama-3-8b --kv-heads $kv --plan $L8 --prompt 4096,16384 \
    --batch 16,max --max-batch 1024 --new 10 --prefill-rows 4 --json "$R/bench.jsonl" > "$R/bench-kv$kv.md" 2>&1
  el "bench kv $kv rc=$?"; cat "$R/bench-kv$kv.md"; pack
done
# 3.
for kv in 1 2; do
  left 45 || { el "skip hf kv $kv"; continue; }
  PYTHONUNBUFFERED=1 timeout $(cap 70) python3 "$D/hf_decode.py" --like llama-3-8b --kv-heads $kv --prompt 4096 --batch 16 \
    --new 12 --json "$R/hf.jsonl" > "$R/hf-kv$kv.md" 2> "$R/hf-kv$kv.err"
  el "hf kv $kv rc=$?"; cat "$R/hf-kv$kv.md"; grep -v -i warn "$R/hf-kv$kv.err" | grep -v "^\s*$" | tail -3; pack
done
# 4.
for kv in 2 1; do
  left 15 || { el "skip check llama kv $kv f32"; continue; }
  timeout $(cap 30) /tmp/cuda_check --upstream $L8 --layers 32 --heads 32 --kv-heads $kv --head-dim 128 --dtypes f32 \
    > "$R/check-llama-kv$kv-f32.txt" 2>&1; el "check llama kv $kv f32 rc=$?"; tail -3 "$R/check-llama-kv$kv-f32.txt"
done
el done; pack
