#!/bin/bash
# Device call 3 (session 7, branch s7-wgpu), carry `.dev-s7-wgpu/` (gzipped release
# `examples/wgpu_products_engine` as wpe.gz, the Vulkan loader .debs in gl/, this script):
#  1. the target: the Llama-3.2-1B shape (random weights) at 4k loads and
#     generates through Vulkan, dense and with the imported upstream plan (4 rows x 4096,
#     32 greedy tokens), each after a parity check against the CPU reference;
#  2. SmolLM2 shape (random weights) 16 x 4096, 64 new tokens: the 50% plan and dense,
#     dispatches per decode step;
#     then the plan with the attention merge as its own kernel (MOA_WGPU_MERGE=0: 183
#     dispatches per step against 153);
#  3. the same dense at a 16 MiB binding limit (every split path: weights by rows, prefill
#     in 16 passes with token chunks, each layer's KV cache in 2 row parts): same tokens;
#  4. HF transformers on the same SmolLM2 shape (eager prefill, static cache + compile).
D=$PWD/.dev-s7-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
pack() { tar czf $OUT/results.tgz -C $OUT r; }
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
L1=tests/fixtures/upstream-plans/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json
P50=plans/smollm2-135m-moa-50.toml
el setup; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run() { local name=$1 cap=$2; shift 2; el "== $name (MOA_WGPU_MERGE=${MOA_WGPU_MERGE:-1}): $*"
  RUST_BACKTRACE=1 timeout $cap $W "$@" 2>&1 | grep -v XDG | tee $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; pack; }
run llama1b 110 --like llama-3.2-1b --rows 4 --prompt 4096 --new 32 --plan dense --plan $L1 --parity 24
run smollm2 50 --like smollm2-135m --rows 16 --prompt 4096 --new 64 --plan $P50 --plan dense --parity 24
MOA_WGPU_MERGE=0 run smollm2-merge0 35 --like smollm2-135m --rows 16 --prompt 4096 --new 64 --plan $P50 --parity 0
run smollm2-split 35 --like smollm2-135m --rows 16 --prompt 4096 --new 64 --plan dense --parity 0 --max-binding 16777216
left=$(( 215 - ($(date +%s) - s) )); el "hf (timeout $left s)"
PYTHONUNBUFFERED=1 timeout $left python3 benches/peers/hf_decode.py --like smollm2-135m --prompt 4096 --batch 16 --new 64 \
  2>$R/hf.err | tee $R/hf.txt
grep -i -E "error|Traceback" $R/hf.err | head -3; pack; el done
