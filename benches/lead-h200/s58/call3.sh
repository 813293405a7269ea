#!/bin/bash
# Session 58, lead call 3: is the quantized decode product bound by its integer-to-float conversions? Binary A =
# 0be12116 (codes converted by vec4<f32>(vec4<u32>)), binary B = the same with quant_weights.wgsl's codes turned into
# f32 by OR-ing them into 2^23's mantissa and subtracting 2^23 (no conversion instruction). 1B Q4_K_M (random_gguf),
# one row, 2 040-token prompt, 256 greedy steps: f16 copy (A), quantized A, quantized B, twice in turn.
# PREDICTED: B within 3% of A (the loads, not the conversions, bound the step); same ids.
SESSION=s58; . "$(dirname "$0")/env.sh" call3 moa:c/moa.xz moab:c/moab.xz rg:c/rg.xz
cd /work/main
/tmp/rg /tmp/q4km.gguf --mix q4_k_m > "$R/rg1.txt" 2>&1
printf 'hello world %.0s' $(seq 1 170) > /tmp/prompt.txt
run() { local name=$1 bin=$2 q=$3
  MOA_WGPU_QUANT_WEIGHTS=$q timeout 150 $bin generate --model /tmp/q4km.gguf --dense --raw --prompt-file /tmp/prompt.txt \
    --max-new-tokens 256 --ignore-eos --print-ids > "$R/$name.out" 2> "$R/$name.err"
  el "$name rc=$? $(grep -o 'loaded in.*' "$R/$name.err") | $(grep -E '^prefill' "$R/$name.err") | ids $(md5sum < "$R/$name.out" | cut -c1-8)"; save; }
for r in 1 2; do run f16-$r /tmp/moa 0; run quantA-$r /tmp/moa 1; run quantB-$r /tmp/moab 1; done
el done; save
