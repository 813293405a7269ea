#!/bin/bash
# (A record of what ran, binary at e830e5f, where the output and gate/up products on matrix
# units were the default; after this call they are opt-in: MOA_WGPU_COOP_DECODE=1.)
# Session 11 (branch s11-wgpu), call 3: decode products on matrix units (coop_matvec.wgsl),
# every loop bound by the compiled K (the driver unrolls it and issues its loads together;
# call 1's head walked params.k, one dependent round trip a trip: 75-84 us), A/B/A/B in
# one call, one process each (SmolLM2 shape, random weights seed 7, 16 x 4096, moa-50,
# 64 greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0).
#   base  MOA_WGPU_COOP_HEAD=0 MOA_WGPU_COOP_DECODE=0: main's paths (2ecc823)
#   new   this branch's defaults: the LM head (2 tiles a subgroup, the argmax's first
#         stage in its epilogue), the output products (+ residual) and the gate/up
#         products (SwiGLU epilogue) on matrix units
#   head  (only if new's parity fails) MOA_WGPU_COOP_DECODE=0: the head alone
# (Call 2 ran this script at 0d2c2be: every coop dispatch failed validation, bindings fixed since.)
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
# Each run only while the call is under 75 s (the helper's device cap).
run() { local name=$1 cap=$2 par=$3; [ $(( $(date +%s) - s )) -gt 75 ] && { el "skip $name"; return; }; el "== $name"
  RUST_BACKTRACE=1 timeout $cap $W $A --parity $par 2>&1 | grep -v XDG > $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; }
base() { MOA_WGPU_COOP_HEAD=0 MOA_WGPU_COOP_DECODE=0 run "$@"; }
base base1 45 0
run new1 30 24
ok=$(awk '/max \|logit err\|/ { for (i = 1; i <= NF; i++) if ($i == "err|") e = $(i + 1); if (e + 0 < 0.1) print "yes" }' $R/new1.txt)
[ "$ok" = yes ] && grep -q "^decode:" $R/new1.txt || MOA_WGPU_COOP_DECODE=0 run head 25 24
base base2 20 0
run new2 20 0
grep -h -E "^== |parity|^decode:|qkv:|attention:|merge:|out:|gate_up:|down:|head:|argmax:|step:|probe:" $R/*.txt | cut -c1-500
el done
