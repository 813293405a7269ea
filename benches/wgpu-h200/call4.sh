#!/bin/bash
# Device call 4 (prepared in session 7, branch s7-wgpu, after commit 6d601f0; not run in
# that session), carry `.dev-s7-wgpu/` (wpe.gz rebuilt at 6d601f0: the 65535-token pass cap, balanced passes; gl/):
# what call 3 could not measure because 16 x 4096 tokens in one prefill pass exceeded the
# 65535 workgroups per grid dimension: SmolLM2 shape (random weights) 16 x 4096, 64 new
# tokens, the 50% plan and dense with the attention merge in the output product (153
# dispatches per step), then the plan with the merge kernel (MOA_WGPU_MERGE=0, 183).
# HF on the same shape was measured in call 3 (80 328 tok/s prefill, 3115 tok/s decode).
D=$PWD/.dev-s7-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
pack() { tar czf $OUT/results.tgz -C $OUT r; }
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
P50=plans/smollm2-135m-moa-50.toml
el setup
run() { local name=$1 cap=$2; shift 2; el "== $name (MOA_WGPU_MERGE=${MOA_WGPU_MERGE:-1}): $*"
  RUST_BACKTRACE=1 timeout $cap $W "$@" 2>&1 | grep -v XDG | tee $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; pack; }
run smollm2 50 --like smollm2-135m --rows 16 --prompt 4096 --new 64 --plan $P50 --plan dense --parity 24
MOA_WGPU_MERGE=0 run smollm2-merge0 35 --like smollm2-135m --rows 16 --prompt 4096 --new 64 --plan $P50 --plan dense --parity 0
el done
