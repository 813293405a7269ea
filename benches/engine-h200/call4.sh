#!/bin/bash
# Device call 4 (s6-engine): the Llama-3-8B shape with its upstream plan at the largest
# batch (and dense at its largest, same call) against HF static cache + torch.compile at
# HF's largest batch; the Llama-2-7B shape at 16k (dense and the Vicuna-7B plan, largest
# batches) against HF at its largest 16k batch. `--prefill-rows` times the prefill on a few rows and copies their caches to
# the rest (decode reads the same slots; see `moa bench --help`). Also carries the first
# part of the SmolLM2 GGUF to /tmp for call 5.
D=$PWD/.dev-s6-engine/a
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
mkdir -p $OUT/r; R=$OUT/r
pack() { tar czf $OUT/results.tgz -C $OUT r; }
cp $D/gguf.a /tmp/gguf.a &
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* | head -1); ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
gunzip -c $D/moa.gz > /tmp/moa; chmod +x /tmp/moa; M=/tmp/moa
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader | tee $R/env.txt
V7=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L8=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
el 8b
timeout 65 $M bench --like llama-3-8b --plan $L8 --prompt 4096 --batch max --max-batch 1024 \
  --new 10 --prefill-rows 16 --json $R/bench.jsonl > $R/bench-8b.md 2>&1
el "8b rc=$?"; cat $R/bench-8b.md; pack
el hf8b
timeout 100 python3 $D/hf_decode.py --like llama-3-8b --prompt 4096 --batch max --prefill-rows 8 \
  --new 12 --json $R/hf.jsonl > $R/hf-8b.md 2> $R/hf-8b.err
el "hf8b rc=$?"; cat $R/hf-8b.md; grep -v -i warn $R/hf-8b.err | grep -v "^\s*$" | tail -4; pack
el 7b16k
timeout 55 $M bench --like llama-2-7b --plan $V7 --prompt 16000 --batch max --new 10 \
  --prefill-rows 4 --json $R/bench.jsonl > $R/bench-7b16k.md 2>&1
el "7b16k rc=$?"; cat $R/bench-7b16k.md; pack
el hf7b16k
timeout $(( 290 - $(date +%s) + s )) python3 $D/hf_decode.py --like llama-2-7b --prompt 16000 --batch max \
  --prefill-rows 2 --new 10 --json $R/hf.jsonl > $R/hf-7b16k.md 2> $R/hf-7b16k.err
el "hf7b16k rc=$?"; cat $R/hf-7b16k.md; grep -v -i warn $R/hf-7b16k.err | grep -v "^\s*$" | tail -4; pack
wait; ls -la /tmp/gguf.a
el done
