#!/bin/bash
# The lead's session 25 call for s25-attn's "Next" (1) and the register read of (2):
#   bash benches/decode-h200/s25/attn/call2-lead.sh   (carry .dev-s25-attn, binaries of 993e4dd)
# 1. call1.sh with s25-attn's call-2 runs: three more A B pairs of the 16-byte-words load
#    (MOA_WGSL_SG_FLAT_WORDS=1) against the default (fused merge), and the loads-only twin
#    with words told 1056 resident.
# 2. the registers of words + MOA_WGSL_SG_FLAT_QK=reload (s25-attn's candidate for 3
#    workgroups an SM, which needs <= 80), beside words and the default.
# Predictions (before the call, from s25-attn's call 1): words wins the device step in all
# three pairs by 30-80 us and its attention row by 0.5-1.5 us a layer in at least two;
# parity 0.0517 3/3; v1056a (twin + words at 1056) 11.0-12.0 us; words + reload 90-110
# registers (words alone 124, reload alone 98 in session 21), so not <= 80.
NOREGS=1 CALL=call2 END=${END:-90} RUNS=${RUNS:-"def4:0:22 W4:0:20 W5:0:12 def5:0:12 def6:0:12 W6:0:12 v1056a:0:12"} \
  bash .dev-s25-attn/call1.sh
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late"
for v in "def:" "W:MOA_WGSL_SG_FLAT_WORDS=1" "WR:MOA_WGSL_SG_FLAT_WORDS=1 MOA_WGSL_SG_FLAT_QK=reload" \
    "R:MOA_WGSL_SG_FLAT_QK=reload"; do
  n=${v%%:*}; e=${v#*:}
  r=$(env $F MOA_WGSL_FUSED_MERGE=1 $e timeout 20 /tmp/wdb regs plans/smollm2-135m-moa-50.toml - 6 2>&1 \
    | grep -m1 -E "^regs layer [0-9]|error")
  echo "$n $r" | tee -a "$OUT/regs-call2.txt"
done
