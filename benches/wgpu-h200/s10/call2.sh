#!/bin/bash
# (A record of what ran: head.wgsl and MOA_WGPU_HEAD were deleted after call 2 (737e0c9); the
# binaries were built at a854b54 (call 1) and 5d0feb6 (call 2). The device tool sends the
# session's checkout, so the carry folder was a copy in its ignored .dev-s10-wgpu/.)
# Session 10 (branch s10-wgpu), call 2: head.wgsl with 4 columns x 4 rows x 4 K parts per invocation (call 1 measured its first form, one column per invocation, no faster than matvec_sg.wgsl), A/B in one call; the decode step with both session-9 changes
# merged (WGSL decode form `quad`, subgroup products), per dispatch kind with the
# attention's decode kernel and merge apart, against this branch's three changes:
#   base   MOA_WGPU_AHEAD=0 MOA_WGPU_HEAD=sg MOA_WGPU_SWIGLU_OUT=0 (= main 8c598a0's paths)
#   new    defaults: greedy steps submitted ahead, the LM head on head.wgsl with the
#          argmax's first stage in its epilogue, SwiGLU in the gate/up product's epilogue
#   headsg new with MOA_WGPU_HEAD=sg (the LM head on matvec_sg.wgsl, the separate argmax)
#   (no dense run: its kernels take 15 s to build on a cold machine; call 1 has base-dense)
#   new-1row, base-1row  one row x 4096 (a step's round trip to the host weighs more)
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
run new 40 $A --plan $P50 --parity 24
MOA_WGPU_HEAD=sg run headsg 25 $A --plan $P50 --parity 0
base base 25 $A --plan $P50 --parity 0
A1="--like smollm2-135m --rows 1 --prompt 4096 --new 64 --profile 5"
run new-1row 20 $A1 --plan $P50 --parity 0
base base-1row 20 $A1 --plan $P50 --parity 0
pack; grep -h -E "^== |^decode:|parity|qkv:|attention:|merge:|out:|gate_up:|down:|head:|argmax:|step:|probe:" $R/*.txt | cut -c1-220
el done
