#!/bin/bash
# Session 27, s27-gemm, call 2 (one H200 through Vulkan): why both prefill products on
# matrix units run at ~9-10 TFLOP/s (call 1: wide 8.5-9.9, naive 8.3-9.3, far from the
# 64-66 of the 4096^3 GEMM).
#   END=100 bash .dev-s27-gemm/call2.sh   (run tool timeout_s 150; carry [".dev-s27-gemm"],
#   filled by benches/wgpu-h200/s27/gemm/pack.sh)
# 1. wgpu_decode_bench regs-gemm: registers, spills, shared memory of wide / wide128 /
#    naive, with naga's runtime checks (as the engine builds the matrix kernels: index
#    clamps, a counter on every loop) and without.
# 2. wp --gemm 32768 10: checks, then at each shape each variant against wide (wide v v
#    wide): naive, wide-u / naive-u (no runtime checks), wide128(-u), and wide's timing
#    diagnostics: noload (no loads after the first stage), nomma (no multiply-adds),
#    nowrite (no write-out).
# PREDICTIONS: if the loop counters that the runtime checks add keep the driver from
#   unrolling fetch/stage's loops, xr/wr live in local memory: regs shows a stack / spill
#   for wide checked and none unchecked, and wide-u runs 2-5x faster (20-50 TFLOP/s).
#   Otherwise: nomma ~= wide means the loads/staging bound it; noload ~= wide means the
#   fragment loads + MMAs do (the Vulkan matrix path itself); nowrite saves the epilogue's
#   share (predicted < 10%: 75-400 MB written per product at a few TB/s = 0.03-0.1 ms).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s27gemm2; rm -rf "$R"; mkdir -p "$R"
END=${END:-100}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s27-gemm-call2.tgz" -C "$R" .; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wp.gz" > /tmp/wp && chmod +x /tmp/wp
gunzip -c "$D/wdb.gz" > /tmp/wdb && chmod +x /tmp/wdb
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
el start
timeout 30 /tmp/wdb regs-gemm > "$R/regs.txt" 2>&1; el "regs rc=$?"; save
timeout 90 /tmp/wp --gemm 32768 10 > "$R/gemm.txt" 2>&1; el "gemm rc=$?"; save
cat "$R/regs.txt" "$R/gemm.txt"
