#!/bin/bash
# Device call 3 (lead, after the memory planner's pool-trim fix 03739d9): the largest batch
# that fits at 4k, dense and with the upstream plan, for the Llama-2-7B and Llama-3-8B
# shapes, and the HF peer near its own largest batch, side by side in one call.
D=$PWD/.dev-lead
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* | head -1); ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
gunzip -c $D/moa.gz > /tmp/moa; chmod +x /tmp/moa; M=/tmp/moa
V7=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L8=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
el 7b
timeout 70 $M bench --like llama-2-7b --plan $V7 --prompt 4096 --batch max --new 12 --json $OUT/bench.jsonl > $OUT/bench-7b.md 2>&1
el "7b rc=$?"; cat $OUT/bench-7b.md
el hf7b
timeout 90 python3 $D/hf_decode.py --like llama-2-7b --prompt 4096 --batch 50 --new 12 --json $OUT/hf.jsonl > $OUT/hf-7b.md 2> $OUT/hf-7b.err
el "hf7b rc=$?"; cat $OUT/hf-7b.md; grep -v -i warn $OUT/hf-7b.err | grep -v "^\s*$" | tail -3
el 8b
timeout 80 $M bench --like llama-3-8b --plan $L8 --prompt 4096 --batch 64,max --max-batch 256 --new 10 --json $OUT/bench.jsonl > $OUT/bench-8b.md 2>&1
el "8b rc=$?"; cat $OUT/bench-8b.md
el hf8b
timeout 70 python3 $D/hf_decode.py --like llama-3-8b --prompt 4096 --batch 64 --new 12 --json $OUT/hf.jsonl > $OUT/hf-8b.md 2> $OUT/hf-8b.err
el "hf8b rc=$?"; cat $OUT/hf-8b.md; grep -v -i warn $OUT/hf-8b.err | grep -v "^\s*$" | tail -3
el done
