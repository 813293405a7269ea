#!/bin/bash
# Ready device call (prepared in session 8, branch s8-wgpu at 308478f, NOT run in that session),
# carry `.dev-s8-wgpu/` (wpe.gz = release `examples/wgpu_products_engine` rebuilt after
# the row block went back to 4, the Vulkan loader .debs in gl/): what session 8's call
# could not measure together:
#  1. the defaults: 4 rows per workgroup, two-stage argmax, the next step encoded ahead,
#     the matrix-unit prefill attention; SmolLM2 shape 16 x 4096, plan and dense, with the
#     per-kind decode profile (expected from call 1's kinds: ~6.46 ms/step with the plan);
#  2. the plan with the attention merge as its own kernel (MOA_WGPU_MERGE=0): is one
#     merge per row cheaper than the merge folded into each of the output product's
#     column blocks (58 us vs the down product's 18 us in call 1)?
#  3. HF on the same shape.
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
run defaults 80 $A --plan $P50 --plan dense --parity 24 --profile 5
MOA_WGPU_MERGE=0 run merge0 40 $A --plan $P50 --parity 0 --profile 5
left=$(( 200 - ($(date +%s) - s) )); el "hf (timeout $left s)"
PYTHONUNBUFFERED=1 timeout $left python3 benches/peers/hf_decode.py --like smollm2-135m --prompt 4096 --batch 16 --new 64 \
  2>$R/hf.err | tee $R/hf.txt
pack; grep -h -E "^== |prefill:|^decode:|parity|step:|probe:" $R/*.txt | cut -c1-220
el done
