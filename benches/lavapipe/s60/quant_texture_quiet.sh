#!/bin/bash
# Session 60: quant_texture.sh's SmolLM2-shape Q4_0 run on a quiet machine (nothing else running):
# the f16 copy with the binary before the texture form ($OLD: 5336ff0e's code, linear_words.wgsl
# loading a column at a time) and after ($NEW), and the kept quantization from textures (now the
# CPU adapters' default); four rounds in turn. Log: quant_texture_quiet.log.
export XDG_RUNTIME_DIR=/tmp/xdg
OLD=${OLD:-/tmp/moa-old}; NEW=${NEW:-/work/main/target/release/moa}
[ -f p.txt ] || printf "hello world %.0s" $(seq 1 40) > p.txt
r() { local name=$1 m=$2; shift 2; /usr/bin/time -v env "$@" $m generate --model ${GGUF:-/tmp/sm-test.gguf} --raw --prompt-file p.txt --max-new-tokens 48 --ignore-eos --print-ids > $name.out 2> $name.err; echo "$name rc=$? $(grep -E '^prefill' $name.err) rss=$(grep Maximum $name.err | awk '{print $NF}') ids=$(grep '^ids' $name.err | md5sum | cut -c1-8) load=$(cut -d' ' -f1 /proc/loadavg)"; }
for i in 1 2 3 4; do
r f16old-$i $OLD MOA_WGPU_QUANT_WEIGHTS=0
r f16-$i $NEW MOA_WGPU_QUANT_WEIGHTS=0
r qtex-$i $NEW
done
