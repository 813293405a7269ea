#!/bin/bash
# Session 48, lead call 1: session 47's 4260e303 moved the PyTorch peers' argument checks into
# benches/peers/peer_args.py (one copy for five scripts); only the copies before it ran on the
# device (s47 call 3). Do all five still run on the device's PyTorch? Small shapes, seconds each;
# inputs are committed result files of earlier sessions. Run from the repository root.
R=${OUT:-/tmp}
t() { local name=$1; shift; timeout 150 python3 "$@" > "$R/$name.txt" 2>&1; echo "$name rc=$? $(tail -2 "$R/$name.txt" | tr '\n' ' ' | cut -c1-300)"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
t rope benches/peers/rope_llama3.py
t hf_prefill benches/peers/hf_prefill.py --like smollm2-135m --batch 2 --prompt 512 --attn sdpa,eager --warm 1 --reps 2 --json "$R/hf_prefill.jsonl"
t hf_decode benches/peers/hf_decode.py --like smollm2-135m --prompt 512 --batch 2 --new 8 --json "$R/hf_decode.jsonl"
t decode_peers benches/peers/decode_peers.py --spans benches/decode-h200/s24/spans.json --batch 4 --launches 2 --replays 2 --flex-layers 0 --json "$R/decode_peers.jsonl"
t prefill_peers benches/peers/prefill_peers.py benches/prefill/s23/call1/plain_v.jsonl --reps 2 --flex-every 2 --out "$R/prefill_peers.jsonl"
t bad_reps benches/peers/hf_prefill.py --like smollm2-135m --reps 0
t bad_spans benches/peers/decode_peers.py --spans /nonexistent.json
