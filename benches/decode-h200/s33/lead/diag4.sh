#!/bin/bash
# Session 33, lead calls 4, 5, 7 and 8 (calls 7-8: the meeting forms; S1-S5 of calls 4-5 in call4/): which phase of the composed fused module goes wrong (call 3: inf with
# phase 1 reading phase 0's `out` too, and with one workgroup: not aliasing, not the meeting).
# Carry .dev-s33-lead (release wpe with MOA_WGPU_DECODE_FUSED_SPLIT); run tool timeout 120.
#   bash .dev-s33-lead/diag4.sh
# S1 = the fused pipeline as two dispatches (out phase, then gate/up phase); S2 = its out phase
# + the separate gate/up product; S3 = the separate out product (COOP_DECODE=1) + its gate/up
# phase. MODEL (before the call): a composition bug in one phase shows as S2 wrong (phase 0) or
# S3 wrong (phase 1); S1 wrong with S2 and S3 right would point at the two phases sharing one
# module (workgroup memory, registers). Predicted: S3 wrong (phase 1, 55%).
D=$(cd "$(dirname "$0")" && pwd); R=${RDIR:-/tmp/s33diag4}; B=/tmp; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
gunzip -c "$D/wpe.gz" > "$B/wpe" && chmod +x "$B/wpe"
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)} MOA_WGPU_COOP_ATTN=0
P=plans/smollm2-135m-moa-50.toml
run() { local name=$1; shift; el "$name: $*"
  env "$@" timeout 25 $B/wpe --like smollm2-135m --rows 1 --new 4 --plan $P --prompt 64 --parity 24 > "$R/$name.txt" 2>&1
  echo "$name rc=$? $(grep -h -o -E "max .logit err. [^,]*, argmax equal [0-9/]+" $R/$name.txt) $(grep -h 'fused mlp meetings' $R/$name.txt) $(grep -h -o -E 'MOA_WGPU_DECODE_FUSED_MLP=1 not used[^;]*' $R/$name.txt) $(grep -h -o -E '[0-9]+ dispatches/step' $R/$name.txt | head -1)" | tee -a "$R/summary.txt"; }
run A MOA_WGPU_DECODE_FUSED_MLP=0
run B MOA_WGPU_DECODE_FUSED_MLP=1
run M0 MOA_WGPU_DECODE_FUSED_MLP=1 MOA_WGPU_DECODE_FUSED_MEET=0

run S1 MOA_WGPU_DECODE_FUSED_MLP=1 MOA_WGPU_DECODE_FUSED_SPLIT=1
el done; tar czf "${OUT:-/tmp}/s33-diag4.tgz" -C "$R" .
