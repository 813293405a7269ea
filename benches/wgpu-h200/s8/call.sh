#!/bin/bash
# Device call of session 8, branch s8-wgpu at 185eb1f (issue 12), carry `.dev-s8-wgpu/` (gzipped
# release `examples/wgpu_products_engine` as wpe.gz, the Vulkan loader .debs in gl/):
# SmolLM2 shape (random weights) 16 x 4096, 64 greedy tokens, the 50% plan and dense:
#  1. after: ROW_BLOCK 16 products, two-stage argmax, next step encoded ahead, the
#     prefill attention on matrix units; decode and prefill profiles per dispatch kind;
#  2. before: MOA_WGPU_ROW_BLOCK=4 MOA_WGPU_ARGMAX2=0 MOA_WGPU_PREENCODE=0
#     MOA_WGPU_COOP_ATTN=0 (session 7's paths), the same profiles;
#  3. HF transformers on the same shape (eager prefill, static cache + torch.compile).
D=$PWD/.dev-s8-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
pack() { tar czf $OUT/results.tgz -C $OUT r; }
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
P50=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 64"
el setup; nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
run() { local name=$1 cap=$2; shift 2; el "== $name: $*"
  RUST_BACKTRACE=1 timeout $cap $W "$@" 2>&1 | grep -v XDG | tee $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; pack; }
run after 80 $A --plan $P50 --plan dense --parity 24 --profile 5 --profile-prefill
MOA_WGPU_ROW_BLOCK=4 MOA_WGPU_ARGMAX2=0 MOA_WGPU_PREENCODE=0 MOA_WGPU_COOP_ATTN=0 run before 70 $A --plan $P50 --plan dense --parity 0 --profile 5 --profile-prefill
left=$(( 235 - ($(date +%s) - s) )); el "hf (timeout $left s)"
PYTHONUNBUFFERED=1 timeout $left python3 benches/peers/hf_decode.py --like smollm2-135m --prompt 4096 --batch 16 --new 64 \
  2>$R/hf.err | tee $R/hf.txt
grep -i -E "error|Traceback" $R/hf.err | head -3; pack
grep -h -E "^== |prefill:|^decode:|parity|step:|probe:" $R/*.txt | cut -c1-220
el done
