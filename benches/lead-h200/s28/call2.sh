#!/bin/bash
# Session 28, the lead's call 2 (H200 through Vulkan, model_gpu of 577e1ae): which default
# change breaks prefill_over_the_binding_limit's 1e-5 (f16 storage, no split-K) in call 1:
# the group attention (s28-pattn) or the products' direct write-out (s28-gemm).
#   bash .dev-lead/diag.sh   (run tool timeout_s 180; carry [".dev-lead"]; 18.9 s)
# RESULT (call2/summary.txt): DEF and GROUP=0 fail with 7.58e-4; DIRECT=0 (with or without
#   the group form) gives 0: the direct write-out.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/lead28b; rm -rf "$R"; mkdir -p "$R"
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/model_gpu.gz" > /tmp/model_gpu && chmod +x /tmp/model_gpu
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
T=prefill_over_the_binding_limit_runs_in_row_groups_and_token_chunks
for cfg in "DEF:" "D0:MOA_WGPU_COOP_DIRECT=0" "G0:MOA_WGPU_COOP_ATTN_GROUP=0" "D0G0:MOA_WGPU_COOP_DIRECT=0 MOA_WGPU_COOP_ATTN_GROUP=0"; do
  n=${cfg%%:*}; e=${cfg#*:}
  env $e timeout 40 /tmp/model_gpu --exact $T --nocapture > "$R/$n.txt" 2>&1; echo "$n rc=$?" >> "$R/summary.txt"
  grep -E "chunked vs one pass|panicked|test result" "$R/$n.txt" | sed "s/^/  $n /" >> "$R/summary.txt"
done
cat "$R/summary.txt"; tar czf "$OUT/lead28b.tgz" -C "$R" .
