#!/bin/bash
# Session 11, lead call 2: the Vicuna-7B f16 check that call 1's 60 s cap cut (merged
# cuda_check, every case printed so a cut run still shows how far it got).
D=$PWD/.dev-s11-lead
gunzip -c $D/cuda_check.gz > /tmp/cuda_check; chmod +x /tmp/cuda_check
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
mkdir -p $OUT/lead2
timeout 110 /tmp/cuda_check --upstream $V --kv-heads 32 --dtypes f16 --verbose > $OUT/lead2/vicuna-f16.txt 2>&1; echo "rc=$?"
wc -l < $OUT/lead2/vicuna-f16.txt; grep -ci fail $OUT/lead2/vicuna-f16.txt; tail -3 $OUT/lead2/vicuna-f16.txt
