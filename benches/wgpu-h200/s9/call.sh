#!/bin/bash
# Session 9 (branch s9-wgpu): the decode products on subgroups (matvec_sg.wgsl) against
# the workgroup-tree kernel (matvec.wgsl), per dispatch kind, then HF compiled in the same
# call. Carry `.dev-s9-wgpu/` (wpe.gz = release `examples/wgpu_products_engine` of this
# branch, the Vulkan loader .debs in gl/). SmolLM2 shape, random weights, 16 x 4096, the
# 50% plan, one process per run (MOA_WGPU_MATVEC=sg for all but tree):
#   tree   default (matvec.wgsl)               sg     subgroupAdd, KSPLIT per product
#   sgb    butterfly, KSPLIT per product       sgb2   butterfly, two K steps a trip
#   sgbk1  butterfly, KSPLIT 1 everywhere      sgbk4  butterfly, KSPLIT 4 everywhere
# then HF static cache + torch.compile (hf_decode.py) until HF_UNTIL s.
D=$PWD/.dev-s9-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
pack() { tar czf $OUT/results.tgz -C $OUT r; }
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
grep -c matvec_sg /tmp/wpe
P50=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 64 --plan $P50 --profile 5"
el setup
run() { local name=$1 cap=$2; shift 2; el "== $name: $*"
  RUST_BACKTRACE=1 timeout $cap $W "$@" 2>&1 | grep -v XDG | tee $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; pack; }
run tree 40 $A --parity 24
export MOA_WGPU_MATVEC=sg
run sg 25 $A --parity 24
MOA_WGPU_SG_BUTTERFLY=1 run sgb 20 $A --parity 24
MOA_WGPU_SG_BUTTERFLY=1 MOA_WGPU_SG_TWO_STEPS=1 run sgb2 20 $A --parity 24
MOA_WGPU_SG_BUTTERFLY=1 MOA_WGPU_SG_KSPLIT=1 run sgbk1 20 $A --parity 0
MOA_WGPU_SG_BUTTERFLY=1 MOA_WGPU_SG_KSPLIT=4 run sgbk4 20 $A --parity 0
unset MOA_WGPU_MATVEC
left=$(( ${HF_UNTIL:-175} - ($(date +%s) - s) )); el "hf (timeout $left s)"
if [ $left -gt 20 ]; then
PYTHONUNBUFFERED=1 timeout $left python3 benches/peers/hf_decode.py --like smollm2-135m --prompt 4096 --batch 16 --new 64 \
  2>$R/hf.err | tee $R/hf.txt
fi
pack; grep -h -E "^== |^decode:|parity|qkv:|out:|gate_up:|down:|head:|step:" $R/*.txt | cut -c1-200
el done
