#!/bin/bash
# Call 7 (session 8, the lead): what issue 11 still lacks, in one call on main 980dd81.
#  1. The Llama-2-7B shape at 4k, each side at its largest batch, side by side: moa dense and
#     the upstream Vicuna-7B plan (`--batch max`, prefill of 4 rows copied to the rest), then
#     HF static cache + torch.compile at its own largest batch (`--batch max --prefill-rows 2`;
#     session 6 measured HF only at 40 rows, its eager prefill ran out of memory at 50).
#  2. The GPU tests of tests/cuda_engine.rs (the op kernels against their CPU references,
#     greedy parity with the CPU reference, token-group prefill, fused decode norms, the
#     sampled prefill, bad requests, the prefill perplexity), run from the release test
#     binary built here (`cargo test --release --test cuda_engine --no-run`); the test that
#     needs the fetched GGUF is skipped (no network there).
# Carry: `.dev-s8-lead` (moa.gz, cuda_engine.gz, hf_decode.py).
D=$PWD/.dev-s8-lead
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
mkdir -p $OUT/r; R=$OUT/r
pack() { tar czf $OUT/results.tgz -C $OUT r; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* | head -1); ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
gunzip -c $D/moa.gz > /tmp/moa; gunzip -c $D/cuda_engine.gz > /tmp/cuda_engine; chmod +x /tmp/moa /tmp/cuda_engine
V7=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv > $R/gpu.txt
el moa7b
timeout 150 /tmp/moa bench --like llama-2-7b --plan $V7 --prompt 4096 --batch max --max-batch 1024 \
  --new 10 --prefill-rows 4 --json $R/bench.jsonl > $R/bench-7b.md 2>&1
el "moa7b rc=$?"; cat $R/bench-7b.md; pack
el hf7b
timeout 170 python3 $D/hf_decode.py --like llama-2-7b --prompt 4096 --batch max --prefill-rows 2 \
  --new 12 --json $R/hf.jsonl > $R/hf-7b.md 2> $R/hf-7b.err
el "hf7b rc=$?"; cat $R/hf-7b.md; grep -v -i warn $R/hf-7b.err | grep -v "^\s*$" | tail -4; pack
el tests
timeout 150 /tmp/cuda_engine --test-threads 1 --skip real_smollm2 > $R/tests.txt 2>&1
el "tests rc=$?"; tail -25 $R/tests.txt; pack
el done
