#!/bin/bash
# Session 34, lead call 12 (one H200, CUDA): s34-user's fix for GQA groups past 8 (the decode's lean
# epilogue only where the warps' states fit a stage) run for the first time on a GPU.
#   mkdir -p .dev-lead34b && gzip -c target/release/examples/cuda_check > .dev-lead34b/cuda_check.gz
#   cp benches/lead-h200/s34/wide-gqa.sh .dev-lead34b/
#   run tool: "bash .dev-lead34b/wide-gqa.sh", carry [".dev-lead34b"], timeout_s 200
# cuda_check (NVRTC on the device, every layer's standard cases, f16 and bf16) on two plans with
# 16 and 32 query heads a KV head (benches/lead-h200/s34/plans/), and the GQA fixture as a control.
# PREDICTED: all pass (f16 error ~2e-4-1e-3, bf16 ~2e-3, tolerance 3e-3); the fixture as before.
D=$(cd "$(dirname "$0")" && pwd); R=${OUT:-/tmp}/wide; mkdir -p "$R"
gunzip -c "$D/cuda_check.gz" > /tmp/cuda_check && chmod +x /tmp/cuda_check
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
s=$(date +%s)
for p in benches/lead-h200/s34/plans/wide-gqa16.toml benches/lead-h200/s34/plans/wide-gqa32.toml plans/fixture-gqa.toml; do
  n=$(basename "$p" .toml)
  timeout 60 /tmp/cuda_check "$p" --dtypes f16,bf16 > "$R/$n.txt" 2>&1; echo "[t=$(( $(date +%s) - s ))s] $n rc=$?" | tee -a "$R/times.txt"
  tail -6 "$R/$n.txt"
done
