#!/bin/bash
# Session 58, lead call 3: the quantized decode products on matvec_q.wgsl (a subgroup per 4 columns, a lane taking a
# 16-byte word of codes a step, the (scale, offset) pair folded in after the word's dot product) against the f16
# copy on matvec_sg.wgsl. Llama-3.2-1B and 3B shapes, Q4_K_M (random_gguf), one row, 2 040-token prompt, 256 greedy
# steps, each setting twice in turn. Binary: the commit after d61c0a30.
# PREDICTED: quantized decode >= 1.2x f16 at 3B (it reads 3.76 GB a step against 6.43) and >= 1.0x at 1B; same ids.
# CALL names the run (call 4 runs this script again with its own binary: call4.sh).
SESSION=s58; . "$(dirname "$0")/env.sh" "${CALL:-call3}" moa:c/moa.xz rg:c/rg.xz
cd /work/main
/tmp/rg /tmp/l3b.gguf --like llama-3.2-3b --mix q4_k_m > "$R/rg3.txt" 2>&1 & p3=$!
/tmp/rg /tmp/q4km.gguf --mix q4_k_m > "$R/rg1.txt" 2>&1
printf 'hello world %.0s' $(seq 1 170) > /tmp/prompt.txt
run() { local name=$1 f=$2 q=$3
  MOA_WGPU_QUANT_WEIGHTS=$q timeout 150 /tmp/moa generate --model $f --dense --raw --prompt-file /tmp/prompt.txt \
    --max-new-tokens 256 --ignore-eos --print-ids > "$R/$name.out" 2> "$R/$name.err"
  el "$name rc=$? $(grep -o 'loaded in.*' "$R/$name.err") | $(grep -E '^prefill' "$R/$name.err") | ids $(md5sum < "$R/$name.out" | cut -c1-8)"
  grep -o "decode products: [^;]*;[^;]*;[^;]*" "$R/$name.err" | head -1 | cut -c1-300 >> "$R/times.txt"; save; }
for r in 1 2; do run 1b-f16-$r /tmp/q4km.gguf 0; run 1b-quant-$r /tmp/q4km.gguf 1; done
wait $p3
for r in 1 2; do run 3b-f16-$r /tmp/l3b.gguf 0; run 3b-quant-$r /tmp/l3b.gguf 1; done
el done; save
