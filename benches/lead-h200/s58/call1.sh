#!/bin/bash
# Session 58, lead call 1: a GGUF file's quantization kept on the device (MOA_WGPU_QUANT_WEIGHTS=1,
# model::QuantMatrix) against the f16 copy, through Vulkan: `moa generate` on random Llama-3.2-1B-shape
# files made here by examples/random_gguf.rs (Q4_K_M: Q4_K with Q6_K attn_v/ffn_down; Q8_0), one row,
# a 2 040-token prompt (prefill) and 256 greedy decode steps, each setting twice (A B A B), peak GPU
# memory sampled by nvidia-smi every 0.2 s. Carry: .dev-s58 = this folder + env.sh + c/{moa,rg}.xz + gl/.
# PREDICTED: same tokens; device weights 1B Q4_K_M 2.47 -> ~1.3 GB; decode faster with quant (the step
# reads ~0.8 instead of ~2.5 GB, if the products are not dispatch-bound); prefill slower with quant
# (linear_words.wgsl, no tiles or matrix units, instead of coop_linear.wgsl).
SESSION=s58; . "$(dirname "$0")/env.sh" call1 moa:c/moa.xz rg:c/rg.xz
cd /work/main
/tmp/rg /tmp/q4km.gguf --mix q4_k_m > "$R/rg1.txt" 2>&1 & p=$!
/tmp/rg /tmp/q8.gguf --mix q8_0 > "$R/rg2.txt" 2>&1; wait $p
el "files $(ls -la /tmp/q4km.gguf /tmp/q8.gguf | awk '{print $5, $9}' | tr '\n' ' ')"
printf 'hello world %.0s' $(seq 1 170) > /tmp/prompt.txt
run() { local name=$1 f=$2 q=$3
  ( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.2; done ) > "$R/$name.mem" 2>/dev/null & m=$!
  MOA_WGPU_QUANT_WEIGHTS=$q MOA_WGPU_STATS=1 timeout 150 /tmp/moa generate --model $f --dense --raw \
    --prompt-file /tmp/prompt.txt --max-new-tokens 256 --ignore-eos --print-ids > "$R/$name.out" 2> "$R/$name.err"
  local rc=$?; kill $m 2>/dev/null
  el "$name rc=$rc peak_mem_MiB=$(sort -n "$R/$name.mem" | tail -1) $(grep -o 'loaded in.*' "$R/$name.err") | $(grep -E '^prefill' "$R/$name.err") | ids $(md5sum < "$R/$name.out" | cut -c1-8)"
  grep -E "decode products|products:" "$R/$name.err" | head -1 | cut -c1-400 >> "$R/times.txt"; save; }
el "idle_mem_MiB=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits)"
for r in 1 2; do
  run q4km-f16-$r /tmp/q4km.gguf 0; run q4km-quant-$r /tmp/q4km.gguf 1
  run q8-f16-$r /tmp/q8.gguf 0; run q8-quant-$r /tmp/q8.gguf 1
done
el done; save
