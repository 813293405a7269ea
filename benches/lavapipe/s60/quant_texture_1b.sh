#!/bin/bash
# Session 60: a random Llama-3.2-1B-shape Q4_K_M file (random_gguf --like llama-3.2-1b --mix q4_k_m,
# 16 layers, 772 MB) on lavapipe, 1 row, a 120-token prompt (p.txt of quant_texture.sh cut to 10
# repeats), 16 greedy tokens: the f16 copy against the kept quantization from textures; twice in turn.
# Log: quant_texture_1b.log.
export XDG_RUNTIME_DIR=/tmp/xdg
NEW=${NEW:-/work/main/target/release/moa}
[ -f p10.txt ] || printf "hello world %.0s" $(seq 1 10) > p10.txt
r() { local name=$1 m=$2; shift 2; /usr/bin/time -v env "$@" $m generate --model ${GGUF:-/tmp/l1b-q4km.gguf} --raw --prompt-file p10.txt --dense --max-new-tokens 16 --ignore-eos --print-ids > $name.out 2> $name.err; echo "$name rc=$? $(grep -E '^prefill' $name.err) rss=$(grep Maximum $name.err | awk '{print $NF}') weights=$(grep -o '[0-9.]* GB of weights' $name.err) loaded=$(grep -o 'loaded in [0-9.]* s' $name.err) ids=$(grep '^ids' $name.err | md5sum | cut -c1-8) load=$(cut -d' ' -f1 /proc/loadavg)"; }
for i in 1 2; do
r f16-$i $NEW MOA_WGPU_QUANT_WEIGHTS=0
r qtex-$i $NEW MOA_WGPU_QUANT_WEIGHTS=1
done
