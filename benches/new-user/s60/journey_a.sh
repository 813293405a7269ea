#!/bin/bash
# Journey A: Llama-3.2-1B / 3B shapes (2 layers, real widths) on lavapipe, dense and with
# the upstream plan's first two layers, HF folders (bf16, f16) and GGUF Q4_K_M files with
# MOA_WGPU_QUANT_WEIGHTS=0/1. Run in the folder the models were made in (see journey.md).
# Each run: wall time and peak RSS (/usr/bin/time -v), the sampled ids.
M=${MOA:-moa}
P=${PROMPT:-long1k.txt}
run() { # a tag, an env setting, then the arguments
  local tag=$1 env=$2; shift 2
  env $env /usr/bin/time -v $M generate --raw --prompt-file $P --max-new-tokens 8 --ignore-eos \
    --print-ids --temperature 5 --top-k 50 --seed 3 "$@" > run-$tag.out 2> run-$tag.err
  echo "$tag rc=$? $(grep -o 'Elapsed.*' run-$tag.err | sed 's/.*): //') s, $(grep -o 'Maximum resident.*' run-$tag.err | sed 's/.*: //') KB; $(grep -o 'loaded in [^)]*)' run-$tag.err); $(grep -o '^prefill.*' run-$tag.err); $(grep '^ids\[0\] generated' run-$tag.err)"
}
run 1b-bf16-dense   "A=1" --model l1b-bf16 --dense
run 1b-bf16-dense-2 "A=1" --model l1b-bf16 --dense
run 1b-bf16-plan    "A=1" --model l1b-bf16 --plan p1b.toml
run 1b-f16-plan     "A=1" --model l1b-f16 --plan p1b.toml
run 1b-q4km-plan-q0 "MOA_WGPU_QUANT_WEIGHTS=0" --model l1b-q4km.gguf --plan p1bg.toml
run 1b-q4km-plan-q1 "MOA_WGPU_QUANT_WEIGHTS=1" --model l1b-q4km.gguf --plan p1bg.toml
run 3b-q4km-plan-q0 "MOA_WGPU_QUANT_WEIGHTS=0" --model l3b-q4km.gguf --plan p3bg.toml
run 3b-q4km-plan-q1 "MOA_WGPU_QUANT_WEIGHTS=1" --model l3b-q4km.gguf --plan p3bg.toml
run 3b-bf16-plan    "A=1" --model l3b-bf16 --plan p3b.toml
