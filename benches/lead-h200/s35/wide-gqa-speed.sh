#!/bin/bash
# Session 35, lead (one H200, CUDA): how fast the decode runs for GQA groups wider than 8 (session
# 34 made them compile and checked them correct; their speed was unmeasured). The upstream
# Llama-3-8B plan (32 query heads, head_dim 128) read with 8 KV heads (groups of 4, the control),
# 2 (groups of 16) and 1 (multi-query: one group of 32), every span as the plan gives it; moa's
# kernels through its own path (NVRTC on the device, CUDA graphs) against dense SDPA over the full
# cache with the same KV heads, in the same call (benches/peers/decode_peers.py).
#   run tool: "bash .dev-lead35c/wide-gqa-speed.sh", carry [".dev-lead35c"] (attention_bench.gz, this
#   script), timeout_s 200
# MODEL / PREDICTION (written before the call): a decode block loads a chunk of K/V once for the
# whole group and pads the group to the MMA tile (16 rows), so groups of 16 cost the same tile as
# 4 and MQA's 32 two tiles: the bytes a step are 4x (g16) and 8x (MQA) smaller than g4's, so the
# fixed cost weighs more. Predicted read rate over the plan's bytes, B=16 4k: g4 3.6-4.3 TB/s
# (as the standing Llama cells), g16 2.5-3.8, MQA 1.5-3.0; wall-clock against SDPA dense with the
# same KV heads >= 1.0 on every layer (SDPA's own rate falls as well at 1-2 KV heads).
D=$(cd "$(dirname "$0")" && pwd); R=${OUT:-/tmp}/wide-speed; mkdir -p "$R"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
gunzip -c "$D/attention_bench.gz" > /tmp/attention_bench && chmod +x /tmp/attention_bench
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
timeout 120 /tmp/attention_bench --model g4:8:$L --model g16:2:$L --model mqa:1:$L --batch 16,4 --prompt 4096 \
  --layers 0,8,16,24,31 --json "$R/moa.jsonl" --spans "$R/spans.json" > "$R/moa.md" 2> "$R/moa.err"; el "moa rc=$?"
timeout 70 python3 benches/peers/decode_peers.py --spans "$R/spans.json" --batch 16,4 --flex-layers none \
  --moa "$R/moa.jsonl" --json "$R/peers.jsonl" > "$R/peers.md" 2> "$R/peers.err"; el "peers rc=$?"
tail -3 "$R/moa.err" "$R/peers.err"
