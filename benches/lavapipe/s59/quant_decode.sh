#!/bin/bash
# Session 59: SmolLM2-shape Q4_0 file (random_gguf --like smollm2-135m --mix q4_0 GGUF), 1 row, 480-token prompt
# (p.txt: printf "hello world %.0s" $(seq 1 40)), 48 greedy tokens, on lavapipe: f16 copy, quantized (linear_words),
# quantized with split-K on (matvec_q.wgsl), f16 with split-K on; twice in turn. Log: quant_decode.log.
export XDG_RUNTIME_DIR=/tmp/xdg
m=${MOA:-/work/main/target/release/moa}
r() { local name=$1; shift; /usr/bin/time -v env "$@" $m generate --model ${GGUF:-/tmp/sm-test.gguf} --raw --prompt-file p.txt --max-new-tokens 48 --ignore-eos --print-ids > $name.out 2> $name.err; echo "$name rc=$? $(grep -E '^prefill' $name.err) rss=$(grep Maximum $name.err | awk '{print $NF}') ids=$(md5sum < $name.out | cut -c1-8)"; }
for i in 1 2; do
r f16-$i MOA_WGPU_QUANT_WEIGHTS=0
r q-$i MOA_WGPU_QUANT_WEIGHTS=1
r qsk-$i MOA_WGPU_QUANT_WEIGHTS=1 MOA_WGPU_SPLIT_K=1
r f16sk-$i MOA_WGPU_QUANT_WEIGHTS=0 MOA_WGPU_SPLIT_K=1
done
