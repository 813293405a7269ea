#!/bin/bash
# Session 58, lead call 4: call 3 again with matvec_q.wgsl's code width a pipeline constant (BITS: the loop over a
# word's 4-weight steps has a constant bound and the word's components constant indices once unrolled). Quantized
# decode products on matvec_q.wgsl against the f16 copy on matvec_sg.wgsl; Llama-3.2-1B and 3B shapes, Q4_K_M
# (random_gguf), one row, 2 040-token prompt, 256 greedy steps, each setting twice in turn. Binary: 97514998.
# PREDICTED (call 3: 0.90-1.0x at 1B, 0.97x at 3B): quantized decode >= 1.1x f16 at 3B; same ids.
SESSION=s58; . "$(dirname "$0")/env.sh" call4 moa:c/moa.xz rg:c/rg.xz
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
