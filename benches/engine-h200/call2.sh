#!/bin/bash
# Device call 2 (i11-engine, release moa binary): Llama-2-7B shape at 4k, dense vs the
# upstream Vicuna-7B plan at batch 16, 40 and the largest that fits; the HF peer at 40;
# then the Llama-3-8B shape with its upstream plan at the largest batch.
D=$PWD/.dev-i11-engine
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* | head -1); ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
gunzip -c $D/moa.gz > /tmp/moa; chmod +x /tmp/moa; M=/tmp/moa
V7=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L8=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
el 7b
timeout 75 $M bench --like llama-2-7b --plan $V7 --prompt 4096 --batch 16,40,max --new 18 --json $OUT/bench-7b.jsonl > $OUT/bench-7b.md 2>&1
el "7b rc=$?"; cat $OUT/bench-7b.md
el hf
timeout 100 python3 $D/hf_decode.py --like llama-2-7b --prompt 4096 --batch 40 --new 12 --json $OUT/hf.jsonl > $OUT/hf.md 2> $OUT/hf.err
el "hf 7b rc=$?"; cat $OUT/hf.md; grep -v -i warn $OUT/hf.err | grep -v "^\s*$" | tail -4
el 8b
timeout 40 $M bench --like llama-3-8b --plan $L8 --prompt 4096 --batch max --max-batch 64 --new 10 --json $OUT/bench-8b.jsonl > $OUT/bench-8b.md 2>&1
el "8b rc=$?"; cat $OUT/bench-8b.md
