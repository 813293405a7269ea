#!/bin/bash
# Session 33, lead call 2: why the fused output -> gate/up decode dispatch gives inf logits
# (lead call 1). Carry .dev-s32-fuse (main cb1b366's release wpe, gl debs); run tool timeout 120.
#   bash .dev-s32-fuse/diag1.sh
# Every run: parity at 1 row x 24 tokens + 2 decode steps (and 16 rows for speed where noted).
# MODEL (before the call): if the inf comes from the math or the bindings of the fused module,
# G1 (MOA_WGPU_DECODE_FUSED_GROUPS=1: one workgroup runs every tile of both phases, its meeting
# is trivial) is inf too; if it comes from the meeting (the data a phase reads not yet visible,
# or stale), G1 is right (0.0496, 3/3) and G36/G96 wrong. C (MOA_WGPU_COOP_DECODE=1, the output
# product on matrix units with its direct walk as its own dispatch) tells whether that phase's
# separate form is right on the device (never checked before). Predicted: G1 right (60%).
D=$(cd "$(dirname "$0")" && pwd); R=${RDIR:-/tmp/s33diag}; B=/tmp; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
gunzip -c "$D/wpe.gz" > "$B/wpe" && chmod +x "$B/wpe"
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)} MOA_WGPU_COOP_ATTN=0
P=plans/smollm2-135m-moa-50.toml
run() { local name=$1; shift; el "$name: $*"
  env "$@" timeout 25 $B/wpe --like smollm2-135m --rows 1 --new 4 --plan $P --prompt 64 --parity 24 > "$R/$name.txt" 2>&1
  echo "$name rc=$? $(grep -h -o -E "max .logit err. [^,]*, argmax equal [0-9/]+" $R/$name.txt) $(grep -h 'fused mlp meetings' $R/$name.txt) $(grep -h -o -E 'MOA_WGPU_DECODE_FUSED_MLP=1 not used[^;]*' $R/$name.txt)" | tee -a "$R/summary.txt"; }
run A MOA_WGPU_DECODE_FUSED_MLP=0
run C MOA_WGPU_COOP_DECODE=1
run G1 MOA_WGPU_DECODE_FUSED_MLP=1 MOA_WGPU_DECODE_FUSED_GROUPS=1
run G2 MOA_WGPU_DECODE_FUSED_MLP=1 MOA_WGPU_DECODE_FUSED_GROUPS=2
run G36 MOA_WGPU_DECODE_FUSED_MLP=1 MOA_WGPU_DECODE_FUSED_GROUPS=36
run G96 MOA_WGPU_DECODE_FUSED_MLP=1
el done; tar czf "${OUT:-/tmp}/s33-$(basename $R).tgz" -C "$R" .
