#!/bin/bash
# (A record of what ran, binary at 625e95b: MOA_WGPU_SG_PREFETCH and the masked two-step
# form were reverted after this call, c740a60.)
# Session 11 (branch s11-wgpu), call 1: the decode step's products and LM head, A/B/A/B in
# one call, one process each (SmolLM2 shape, random weights seed 7, 16 x 4096, moa-50,
# 64 greedy tokens, --profile 5; MOA_WGPU_COOP_ATTN=0: the scalar prefill attention, whose
# pipelines load in 2 s instead of 15 and leave decode unchanged).
#   base  MOA_WGPU_COOP_HEAD=0 MOA_WGPU_SG_PREFETCH=0: main's paths (2ecc823)
#   new   this branch's defaults: the LM head on matrix units (coop_head.wgsl, 2 tiles a
#         subgroup) with the argmax's first stage in its epilogue; the subgroup products
#         load their epilogue inputs (residual, RoPE angle) before the K loop
#   two   new + MOA_WGPU_SG_TWO_STEPS=1 (two K steps a trip, the second masked past K)
#   t4    new + MOA_WGPU_COOP_HEAD_TILES=4
# Carry `.dev-s11-wgpu/` (wpe.gz = release `examples/wgpu_products_engine` of this branch,
# the Vulkan loader .debs in gl/, this script).
D=$PWD/.dev-s11-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --prompt 4096 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml"
el setup
run() { local name=$1 cap=$2 par=$3; el "== $name"
  RUST_BACKTRACE=1 timeout $cap $W $A --parity $par 2>&1 | grep -v XDG > $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; }
base() { MOA_WGPU_COOP_HEAD=0 MOA_WGPU_SG_PREFETCH=0 run "$@"; }
base base1 45 24
run new1 30 24
# Should the matrix-unit head break the process, the prefetch alone (A/B against base).
grep -q "^decode:" $R/new1.txt || MOA_WGPU_COOP_HEAD=0 run pf 20 24
base base2 20 0
run new2 20 0
MOA_WGPU_SG_TWO_STEPS=1 run two 20 0
MOA_WGPU_COOP_HEAD_TILES=4 run t4 20 0
grep -h -E "^== |parity|^decode:|qkv:|attention:|merge:|out:|gate_up:|down:|head:|argmax:|step:|probe:" $R/*.txt | cut -c1-400
el done
