#!/bin/bash
# Session 28, the lead's call 3 on merged main 1642129 (all of s28-pattn, s28-gemm, s28-attn
# and the test's f16 bound): the whole tests/model_gpu.rs on the H200 through Vulkan.
#   bash .dev-lead/call3.sh   (run tool timeout_s 120; carry [".dev-lead"])
# PREDICTION: 30 passed, 1 ignored (call 1: 28 passed, 1 failed (the bound), 1 ignored; s28-attn
#   added the packed-queries test).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/lead28c; rm -rf "$R"; mkdir -p "$R"
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/model_gpu.gz" > /tmp/model_gpu && chmod +x /tmp/model_gpu
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
s=$(date +%s)
timeout 90 /tmp/model_gpu --test-threads 12 --nocapture > "$R/model_gpu.txt" 2>&1
echo "rc=$? after $(( $(date +%s) - s )) s" >> "$R/model_gpu.txt"
grep -E "^test |test result|panicked|chunked vs one pass|^rc=" "$R/model_gpu.txt" | cut -c1-240 > "$R/summary.txt"
cat "$R/summary.txt"; tar czf "$OUT/lead28c.tgz" -C "$R" .
