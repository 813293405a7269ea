#!/bin/bash
# Session 60: the kept quantization read from textures on lavapipe (quant_weights_texture.wgsl).
# GGUF (default: random_gguf --like smollm2-135m --mix q4_0), 1 row, 480-token prompt
# (p.txt: printf "hello world %.0s" $(seq 1 40)), 48 greedy tokens: the f16 copy (textures) with
# the binary before this change ($OLD) and after ($NEW), the kept quantization from textures
# (the form =1 now takes on CPU adapters) and from storage buffers (MOA_WGPU_TEXTURE_WEIGHTS=0);
# three rounds in turn. Log: quant_texture.log.
export XDG_RUNTIME_DIR=/tmp/xdg
OLD=${OLD:-/tmp/moa-old}; NEW=${NEW:-/work/main/target/release/moa}
[ -f p.txt ] || printf "hello world %.0s" $(seq 1 40) > p.txt
r() { local name=$1 m=$2; shift 2; /usr/bin/time -v env "$@" $m generate --model ${GGUF:-/tmp/sm-test.gguf} --raw --prompt-file p.txt --max-new-tokens 48 --ignore-eos --print-ids > $name.out 2> $name.err; echo "$name rc=$? $(grep -E '^prefill' $name.err) rss=$(grep Maximum $name.err | awk '{print $NF}') weights=$(grep -o '[0-9.]* GB of weights' $name.err) ids=$(grep '^ids' $name.err | md5sum | cut -c1-8) load=$(cut -d' ' -f1 /proc/loadavg)"; }
for i in 1 2 3; do
r f16old-$i $OLD MOA_WGPU_QUANT_WEIGHTS=0
r f16-$i $NEW MOA_WGPU_QUANT_WEIGHTS=0
r qtex-$i $NEW MOA_WGPU_QUANT_WEIGHTS=1
r qbuf-$i $NEW MOA_WGPU_QUANT_WEIGHTS=1 MOA_WGPU_TEXTURE_WEIGHTS=0
done
