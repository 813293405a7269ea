#!/bin/bash
# Session 47, lead call 3: round 38 changed the PyTorch peers (arguments checked before torch is imported);
# do they still run on the device's PyTorch? Small shapes, seconds each.
R=${OUT:-/tmp}  # run from the repository root (the device tool starts there)
t() { local name=$1; shift; timeout 150 python3 "$@" > "$R/$name.txt" 2>&1; echo "$name rc=$? $(tail -2 "$R/$name.txt" | tr '\n' ' ' | cut -c1-300)"; }
t rope benches/peers/rope_llama3.py
t hf_prefill benches/peers/hf_prefill.py --like smollm2-135m --batch 2 --prompt 512 --attn sdpa,eager --warm 1 --reps 2 --json "$R/hf_prefill.jsonl"
t hf_decode benches/peers/hf_decode.py --like smollm2-135m --prompt 512 --batch 2 --new 8 --json "$R/hf_decode.jsonl"
t bad_reps benches/peers/hf_prefill.py --like smollm2-135m --reps 0
