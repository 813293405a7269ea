#!/bin/bash
# Prepared in session 8's second round (branch s8-wgpu at 74da063), NOT run: which of
# matvec_v2.wgsl's changes made it slower than matvec.wgsl in call 3. Carry
# `.dev-s8-wgpu/` (wpe4.gz = release `examples/wgpu_products_engine` at 74da063, the Vulkan
# loader .debs in gl/). ~60 s of command. Plan only, per-kind profile, one process each:
# v1 (default), v2 with all changes, v2 without the workgroup remap, v2 without two K
# steps a trip, v2 with neither (= v1 + vec4 loads + the tree skipping the unused sums).
D=$PWD/.dev-s8-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
pack() { tar czf $OUT/results.tgz -C $OUT r; }
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe4.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
P50=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 64 --plan $P50 --profile 5"
el setup
run() { local name=$1 cap=$2; shift 2; el "== $name: $*"
  RUST_BACKTRACE=1 timeout $cap $W "$@" 2>&1 | grep -v XDG | tee $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; pack; }
run v1 40 $A --parity 24
MOA_WGPU_MATVEC=2 run v2 25 $A --parity 24
MOA_WGPU_MATVEC=2 MOA_WGPU_MATVEC2_REMAP=0 run v2-noremap 25 $A --parity 0
MOA_WGPU_MATVEC=2 MOA_WGPU_MATVEC2_TWO_STEPS=0 run v2-onestep 25 $A --parity 0
MOA_WGPU_MATVEC=2 MOA_WGPU_MATVEC2_REMAP=0 MOA_WGPU_MATVEC2_TWO_STEPS=0 run v2-vec4only 25 $A --parity 0
pack; grep -h -E "^== |^decode:|parity|qkv:|out:|gate_up:|down:|head:|step:" $R/*.txt | cut -c1-160
el done
