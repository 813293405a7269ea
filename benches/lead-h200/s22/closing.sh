#!/bin/bash
# Session 22, lead call (one H200 through Vulkan), merged main (s22-wgpu + s22-fresh +
# s22-prefill): the products' new default (8 rows a workgroup row, MOA_WGPU_SG_ROWS
# unset) through the engine's own path, then the whole tests/model_gpu.rs.
#   bash .dev-s22-close/closing.sh   (run tool timeout_s 200; carry [".dev-s22-close"],
#   filled by pack-closing.sh)
# 1. s22-wgpu's benches/wgpu-h200/s22/call2.sh (END=95): new/old x3, one process a run.
#    PREDICTIONS (s22-wgpu's, in call2.sh's header): device step new 1.50-1.52 ms, old
#    1.57-1.59; tok/s new +3..+6%.
# 2. tests/model_gpu.rs, whole file. PREDICTION: 27 passed, 1 ignored (as session 21).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s22close; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/close.tgz" -C "$R" .; }
END=95 OUT=$R bash "$D/call2.sh" > "$R/call2.log" 2>&1; el "call2 rc=$?"; tail -12 "$R/call2.log"; save
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
( cd "$ROOT" && timeout 90 /tmp/model_gpu --test-threads 1 > "$R/model_gpu.txt" 2>&1; echo "rc=$?" >> "$R/model_gpu.txt" )
el "model_gpu"; grep -E "^test result|FAILED|panicked|rc=" "$R/model_gpu.txt" | head -5; save
