#!/bin/bash
# Session 8, second round (branch s8-wgpu): matvec.wgsl v2 (vec4 loads, row blocks of a
# column block in consecutive workgroups) against v1 (MOA_WGPU_MATVEC=1), side by side,
# then HF. Carry `.dev-s8-wgpu/` (wpe.gz = release `examples/wgpu_products_engine` at the
# v2 commit a2b7651, the Vulkan loader .debs in gl/).
D=$PWD/.dev-s8-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
pack() { tar czf $OUT/results.tgz -C $OUT r; }
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
P50=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 64"
el setup
run() { local name=$1 cap=$2; shift 2; el "== $name: $*"
  RUST_BACKTRACE=1 timeout $cap $W "$@" 2>&1 | grep -v XDG | tee $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; pack; }
run v2 75 $A --plan $P50 --plan dense --parity 24 --profile 5
MOA_WGPU_MATVEC=1 run v1 35 $A --plan $P50 --parity 0 --profile 5
# 16 rows per workgroup with v2 (each weight loaded once per step), only if time is left.
if [ $(( $(date +%s) - s )) -lt 75 ]; then
  MOA_WGPU_ROW_BLOCK=16 run v2rb16 25 $A --plan $P50 --parity 0 --profile 0; fi
left=$(( ${HF_UNTIL:-150} - ($(date +%s) - s) )); el "hf (timeout $left s)"
if [ $left -gt 20 ]; then
PYTHONUNBUFFERED=1 timeout $left python3 benches/peers/hf_decode.py --like smollm2-135m --prompt 4096 --batch 16 --new 64 \
  2>$R/hf.err | tee $R/hf.txt
fi
pack; grep -h -E "^== |prefill:|^decode:|parity|step:|probe:" $R/*.txt | cut -c1-220
el done
