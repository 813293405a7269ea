#!/bin/bash
# Session 60: quant_texture.sh's SmolLM2-shape Q4_0 run: the f16 textures, the kept quantization
# from textures loading its pair texels every step ($A, c5373b25) and once a group ($B, the pair
# texels kept in private variables); three rounds in turn. Log: quant_texture_cache.log.
export XDG_RUNTIME_DIR=/tmp/xdg
A=${A:-/tmp/moa-new}; B=${B:-/work/main/target/release/moa}
[ -f p.txt ] || printf "hello world %.0s" $(seq 1 40) > p.txt
r() { local name=$1 m=$2; shift 2; /usr/bin/time -v env "$@" $m generate --model ${GGUF:-/tmp/sm-test.gguf} --raw --prompt-file p.txt --max-new-tokens 48 --ignore-eos --print-ids > $name.out 2> $name.err; echo "$name rc=$? $(grep -E '^prefill' $name.err) rss=$(grep Maximum $name.err | awk '{print $NF}') ids=$(grep '^ids' $name.err | md5sum | cut -c1-8) load=$(cut -d' ' -f1 /proc/loadavg)"; }
for i in 1 2 3; do
r f16-$i $A MOA_WGPU_QUANT_WEIGHTS=0
r qtex-$i $A MOA_WGPU_QUANT_WEIGHTS=1
r qcache-$i $B MOA_WGPU_QUANT_WEIGHTS=1
done
