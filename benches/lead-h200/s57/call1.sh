#!/bin/bash
# Session 57, lead call 1: the engines built from a GGUF stream (model::WeightStream, 38ca7bc5 and the CUDA
# engine's WeightFeed after it): tests/cuda_engine.rs on the GPU (its new test: the CUDA engine from a stream
# gives the loaded model's engine's logits bit for bit, f32 and bf16, tied and untied) and tests/model_gpu.rs
# (the wgpu upload now asks a WeightFeed for each tensor). Debug test binaries of this session's head.
# Carry: .dev-s57 = this folder + benches/lead-h200/s51/env.sh + c/{ce,mg}.xz + gl/.
# PREDICTED: cuda_engine all pass (17); model_gpu 32 passed, 1 ignored.
SESSION=s57; . "$(dirname "$0")/env.sh" call1 ce:c/ce.xz mg:c/mg.xz
(cd /work/main && timeout 240 /tmp/ce --test-threads 1 > "$R/cuda_engine.txt" 2>&1); el "cuda_engine rc=$? $(grep 'test result' "$R/cuda_engine.txt")"
grep -E 'FAILED|panicked|stream' "$R/cuda_engine.txt" | head -20 | tee -a "$R/times.txt"; save
(cd /work/main && timeout 300 /tmp/mg > "$R/model_gpu.txt" 2>&1); el "model_gpu rc=$? $(grep 'test result' "$R/model_gpu.txt")"
grep -E 'FAILED|panicked' "$R/model_gpu.txt" | head -20 | tee -a "$R/times.txt"; el done; save
