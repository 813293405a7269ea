#!/bin/bash
# Session 9's second prefill call: tests/cuda_engine.rs (release test binary built from
# branch s9-prefill) on the H200, every test, the perplexity test printing all four cases.
# Run from the carry folder .dev-s9-prefill/, whose parent is the repository root.
cd "$(dirname "$(dirname "$0")")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p "${OUT:-/tmp/out}"
timeout 150 ./.dev-s9-prefill/cuda_engine --test-threads 1 2>&1 | tee "${OUT:-/tmp/out}/engine.txt" | grep -v "^\s*[0-9]*:" | tail -40
