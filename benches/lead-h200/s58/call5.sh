#!/bin/bash
# Session 58, lead call 5: the SmolLM2 shape at issue 12's batch with matvec_q.wgsl (binary 97514998): a random
# SmolLM2-shape Q4_0 file (random_gguf), 16 rows x 3 840-token prompts, plans/smollm2-135m-moa-50.toml, 256 greedy
# steps, f16 copy against quantized, twice in turn. PREDICTED: within 5% of each other (attention-bound step).
SESSION=s58; . "$(dirname "$0")/env.sh" call5 moa:c/moa.xz rg:c/rg.xz
cd /work/main
/tmp/rg /tmp/sm.gguf --like smollm2-135m --mix q4_0 > "$R/rgs.txt" 2>&1
printf 'hello world %.0s' $(seq 1 320) > /tmp/p4k.txt
sm="--model /tmp/sm.gguf --plan plans/smollm2-135m-moa-50.toml $(for i in $(seq 16); do printf -- '--prompt-file /tmp/p4k.txt '; done)"
run() { local name=$1 q=$2
  MOA_WGPU_QUANT_WEIGHTS=$q timeout 60 /tmp/moa generate --raw --max-new-tokens 256 --ignore-eos --print-ids $sm > "$R/$name.out" 2> "$R/$name.err"
  el "$name rc=$? $(grep -o 'loaded in.*' "$R/$name.err") | $(grep -E '^prefill' "$R/$name.err") | ids $(md5sum < "$R/$name.out" | cut -c1-8)"; gzip -9 "$R/$name.err"; save; }
for r in 1 2; do run sm16-f16-$r 0; run sm16-quant-$r 1; done
el done; save
