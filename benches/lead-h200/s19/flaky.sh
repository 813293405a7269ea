#!/bin/bash
# Session 19, the lead's first call: the H200-only flake of
# model_gpu::swiglu_in_the_gate_up_epilogue_matches_the_cpu_reference (f16, decode step 0,
# one row off by ~10 in session 18). The test alone 2-3 times under each setting: the
# default, every matrix unit off, then one suspect at a time off or changed.
# Carry: DIR with model_gpu.gz (release test binary) and gl/*.deb.
#   bash DIR/flaky.sh   (END = seconds after which no run starts)
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=$OUT/r; mkdir -p $R; END=${END:-150}
for m in /work/main /work/wt-s19-lead; do [ -e $m ] || { mkdir -p /work; ln -s "$ROOT" $m; }; done
cd $D; [ -e model_gpu ] || { gunzip -f model_gpu.gz; chmod +x model_gpu; }
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
cd $ROOT; T0=$SECONDS
for spec in 3: 3:MOA_WGPU_COOP=0 2:MOA_WGPU_COOP_ATTN=0 2:MOA_WGPU_COOP_HEAD=0 2:MOA_WGPU_UNCHECKED=0 \
            2:MOA_WGSL_SG_DECODE=0 2:MOA_WGPU_SG_GROUPS=2 2:MOA_WGPU_SG_KSPLIT=4; do
  n=${spec%%:*}; set=${spec#*:}
  for i in $(seq $n); do
    [ $((SECONDS-T0)) -gt $END ] && { echo "stop at $((SECONDS-T0)) s"; break 2; }
    echo "== [${set:-default}] run $i (t=$((SECONDS-T0)) s)"
    env $set timeout 40 $D/model_gpu --test-threads 1 --exact swiglu_in_the_gate_up_epilogue_matches_the_cpu_reference 2>&1 \
      | grep -E "^test |max \|err\||panicked at|rror" | head -4
  done
done 2>&1 | tee $R/flaky.txt
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv >> $R/flaky.txt
