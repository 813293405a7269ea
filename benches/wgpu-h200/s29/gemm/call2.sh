#!/bin/bash
# Session 29, s29-gemm, call 2 — PREPARED, NOT RUN by s29-gemm (its device budget went to
# call 1): the whole tests/model_gpu.rs on the H200 with s29-gemm's release test binary.
# Call 1's model_gpu binary had been linked against another worktree's library (the
# shared-target hazard: its start-up notes lack "SwiGLU in the gate/up product" and its
# strings lack the SWIGLU override), so it tested main's products, not these: its f16
# no-split-K chunked vs one pass 7.58e-4 is main's figure.
#   bash .dev-s29-gemm/call2.sh   (run tool timeout_s 120; carry [".dev-s29-gemm"], filled
#   by pack.sh with model_gpu.gz = `cargo test --release --test model_gpu --no-run` of
#   s29-gemm, checked with `strings | grep 'override SWIGLU'`)
# PREDICTION: 29 passed, 1 ignored; "f32=false split_k=false: chunked vs one pass, max |err|
#   0.00e0 (bound 1e-5)" (every tile's accumulators start from the residual); the engines'
#   notes say "(SwiGLU in the gate/up product (max rel err 9.1e-8))".
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s29gemm2; rm -rf "$R"; mkdir -p "$R"
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/model_gpu.gz" > /tmp/model_gpu && chmod +x /tmp/model_gpu
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
s=$(date +%s)
timeout 90 /tmp/model_gpu --test-threads 12 --nocapture > "$R/model_gpu.txt" 2>&1
echo "rc=$? after $(( $(date +%s) - s )) s" >> "$R/model_gpu.txt"
grep -E "^test |test result|panicked|chunked vs one pass|SwiGLU|^rc=" "$R/model_gpu.txt" | cut -c1-240 | sort | uniq -c | sort -rn | head -60 > "$R/summary.txt"
cat "$R/summary.txt"; tar czf "$OUT/s29-gemm-call2.tgz" -C "$R" .
