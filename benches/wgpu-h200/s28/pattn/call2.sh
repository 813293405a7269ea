#!/bin/bash
# Session 28, s28-pattn, call 2 (one H200 through Vulkan): tests/model_gpu.rs, all of it,
# on the branch's head with the group form the default. Call 1's run of the prefill tests
# failed one assertion that was the branch's own: the engine's description held the
# attention's build time, and prefill_over_the_binding_limit_... compares two engines'
# descriptions (now the time is WgpuEngine::prefill_attention_build, not in describe()).
#   bash .dev-s28-pattn/call2.sh   (run tool timeout_s 70; carry [".dev-s28-pattn"])
# PREDICTION: 29 passed, 1 ignored (session 27's lead call: 28 passed, 1 ignored, plus
#   the_matrix_unit_prefill_attention_runs_in_both_forms), ~60 s.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s28pattn2; rm -rf "$R"; mkdir -p "$R"
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/model_gpu.gz" > /tmp/model_gpu && chmod +x /tmp/model_gpu
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
s=$(date +%s)
timeout 55 /tmp/model_gpu --test-threads 12 --nocapture > "$R/model_gpu.txt" 2>&1
echo "rc=$? after $(( $(date +%s) - s )) s" >> "$R/model_gpu.txt"
grep -E "^test |test result|panicked|group (true|false) sparse|^rc=" "$R/model_gpu.txt" | cut -c1-300 > "$R/summary.txt"
cat "$R/summary.txt"
tar czf "$OUT/s28-pattn-call2.tgz" -C "$R" .
