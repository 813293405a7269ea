#!/bin/bash
# Session 58, lead call 2: call 1 again with the quantized decode products on subgroups (matvec_sg.wgsl with
# quant_weights.wgsl, RoPE and SwiGLU in their epilogues as for f16), plus a Llama-3.2-3B-shape Q4_K_M file (1 row)
# and a SmolLM2-shape Q4_0 file at issue 12's batch (16 rows x 3 840-token prompts, plans/smollm2-135m-moa-50.toml,
# 256 greedy steps). Files made here by examples/random_gguf.rs. Carry: .dev-s58 (c/{moa,rg}.xz rebuilt).
# Binary: the commit after c449e20c: the many-row products of quantized parts on matrix units over dequant.wgsl's f16 scratch.
# PREDICTED: prefill with quant within ~10% of f16; 1B/3B decode with quant >= f16 (the step reads 0.6x the bytes; call 1's 0.73x came from matvec.wgsl's
# tree reduction); SmolLM2 16x4k: quant within a few % of f16 (its step is dispatch- and attention-bound);
# the same ids.
SESSION=s58; . "$(dirname "$0")/env.sh" call2 moa:c/moa.xz rg:c/rg.xz
cd /work/main
/tmp/rg /tmp/l3b.gguf --like llama-3.2-3b --mix q4_k_m > "$R/rg3.txt" 2>&1 & p3=$!
/tmp/rg /tmp/sm.gguf --like smollm2-135m --mix q4_0 > "$R/rgs.txt" 2>&1 & ps=$!
/tmp/rg /tmp/q4km.gguf --mix q4_k_m > "$R/rg1.txt" 2>&1; wait $ps
el "files $(ls -la /tmp/q4km.gguf /tmp/sm.gguf | awk '{print $5, $9}' | tr '\n' ' ')"
printf 'hello world %.0s' $(seq 1 170) > /tmp/prompt.txt
printf 'hello world %.0s' $(seq 1 320) > /tmp/p4k.txt
run() { local name=$1 q=$2; shift 2
  ( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.2; done ) > "$R/$name.mem" 2>/dev/null & m=$!
  MOA_WGPU_QUANT_WEIGHTS=$q MOA_WGPU_STATS=1 timeout 150 /tmp/moa generate --raw --max-new-tokens 256 --ignore-eos --print-ids "$@" > "$R/$name.out" 2> "$R/$name.err"
  local rc=$?; kill $m 2>/dev/null
  el "$name rc=$rc peak_mem_MiB=$(sort -n "$R/$name.mem" | tail -1) $(grep -o 'loaded in.*' "$R/$name.err") | $(grep -E '^prefill' "$R/$name.err") | ids $(md5sum < "$R/$name.out" | cut -c1-8)"
  [ $rc = 0 ] || tail -3 "$R/$name.err" >> "$R/times.txt"
  grep -o "decode products: [^;]*" "$R/$name.err" | head -1 | cut -c1-300 >> "$R/times.txt"; save; }
one="--model /tmp/q4km.gguf --dense --prompt-file /tmp/prompt.txt"
for r in 1 2; do run 1b-f16-$r 0 $one; run 1b-quant-$r 1 $one; done
sm="--model /tmp/sm.gguf --plan plans/smollm2-135m-moa-50.toml $(for i in $(seq 16); do printf -- '--prompt-file /tmp/p4k.txt '; done)"
for r in 1 2; do run sm16-f16-$r 0 $sm; run sm16-quant-$r 1 $sm; done
wait $p3; el "3b file $(ls -la /tmp/l3b.gguf | awk '{print $5}')"
three="--model /tmp/l3b.gguf --dense --prompt-file /tmp/prompt.txt"
for r in 1 2; do run 3b-f16-$r 0 $three; run 3b-quant-$r 1 $three; done
el done; save
