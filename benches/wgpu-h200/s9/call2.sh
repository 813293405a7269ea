#!/bin/bash
# Session 9 (branch s9-wgpu), call 2: matvec_sg.wgsl after the fix of the RMSNorm sums of
# squares in a partial last K trip (call 1's subgroup runs: parity max |logit err| 6.4).
# Carry `.dev-s9-wgpu/` (wpe.gz = release `examples/wgpu_products_engine` at ce93a82, the
# Vulkan loader .debs in gl/). SmolLM2 shape, random weights, 16 x 4096:
#   sgb       the 50% plan, MOA_WGPU_MATVEC=sg MOA_WGPU_SG_BUTTERFLY=1 (KSPLIT per product)
#   sgb-dense the same, dense             tree  the 50% plan, matvec.wgsl (default)
D=$PWD/.dev-s9-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
pack() { tar czf $OUT/results.tgz -C $OUT r; }
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
grep -c "x must not count in the sums" /tmp/wpe
A="--like smollm2-135m --rows 16 --prompt 4096 --new 64 --profile 5"
P50=plans/smollm2-135m-moa-50.toml
el setup
run() { local name=$1 cap=$2; shift 2; el "== $name: $*"
  RUST_BACKTRACE=1 timeout $cap $W "$@" 2>&1 | grep -v XDG | tee $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; pack; }
MOA_WGPU_MATVEC=sg MOA_WGPU_SG_BUTTERFLY=1 run sgb 40 $A --plan $P50 --parity 24
MOA_WGPU_MATVEC=sg MOA_WGPU_SG_BUTTERFLY=1 run sgb-dense 25 $A --plan dense --parity 24
run tree 25 $A --plan $P50 --parity 0
pack; grep -h -E "^== |^decode:|parity|qkv:|out:|gate_up:|down:|head:|step:" $R/*.txt | cut -c1-200
el done
