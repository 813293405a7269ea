#!/bin/bash
# (A record of what ran: head.wgsl and MOA_WGPU_HEAD were deleted after call 2 (737e0c9); the
# binaries were built at a854b54 (call 1) and 5d0feb6 (call 2). The device tool sends the
# session's checkout, so the carry folder was a copy in its ignored .dev-s10-wgpu/.)
# Session 10 (branch s10-wgpu), call 1: the decode step with both session-9 changes
# merged (WGSL decode form `quad`, subgroup products), per dispatch kind with the
# attention's decode kernel and merge apart, against this branch's three changes:
#   base   MOA_WGPU_AHEAD=0 MOA_WGPU_HEAD=sg MOA_WGPU_SWIGLU_OUT=0 (= main 8c598a0's paths)
#   new    defaults: greedy steps submitted ahead, the LM head on head.wgsl with the
#          argmax's first stage in its epilogue, SwiGLU in the gate/up product's epilogue
#   new-dense, base-dense  the same, dense
# Carry `.dev-s10-wgpu/` (wpe.gz = release `examples/wgpu_products_engine` of this branch,
# the Vulkan loader .debs in gl/). SmolLM2 shape, random weights (seed 7), 16 x 4096,
# 64 new tokens, `--profile 5`; MOA_WGPU_COOP_ATTN=0 (the scalar prefill attention: its
# 13 s of pipeline builds per load buy nothing for decode), one process per run.
D=$PWD/.dev-s10-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
pack() { tar czf $OUT/results.tgz -C $OUT r; }
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --prompt 4096 --new 64 --profile 5"
P50=plans/smollm2-135m-moa-50.toml
el setup
run() { local name=$1 cap=$2; shift 2; el "== $name: $*"
  RUST_BACKTRACE=1 timeout $cap $W "$@" 2>&1 | grep -v XDG | tee $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; pack; }
base() { MOA_WGPU_AHEAD=0 MOA_WGPU_HEAD=sg MOA_WGPU_SWIGLU_OUT=0 run "$@"; }
base base 30 $A --plan $P50 --parity 24
run new 30 $A --plan $P50 --parity 24
run new-dense 25 $A --plan dense --parity 24
base base-dense 25 $A --plan dense --parity 0
pack; grep -h -E "^== |^decode:|parity|qkv:|attention:|merge:|out:|gate_up:|down:|head:|argmax:|step:|probe:" $R/*.txt | cut -c1-220
el done
