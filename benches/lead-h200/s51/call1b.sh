#!/bin/bash
# Session 51, lead call 1: main at 42f2e031 (sessions 49-50 changed only tests and their sweeps) on a GPU.
# Binaries built here at 42f2e031: debug test binaries (opt-level 1) model_gpu, wgpu_kernels (wk),
# wgsl_decode_forms (wdf), cuda_engine (ce); release example cuda_check; all stripped (the carry's 64 MiB holds the tracked tree's 49 MB).
#   bash .dev-s51/call1.sh   (carry [".dev-s51"])
# 1. model_gpu, wgpu_kernels, wgsl_decode_forms with MOA_TEST_FULL=1 (every combination, which session 50's
#    sweeps run only in part by default; never run whole in full mode). PREDICTED: all pass.
# 2. tests/cuda_engine.rs. PREDICTED: all pass but the real-SmolLM2 test (needs the GGUF: no network).
# 3. cuda_check on both upstream plans (Vicuna-7B MHA, Llama-3-8B GQA), f16 and bf16, every layer, and
#    compute-sanitizer memcheck + racecheck on fixture-gqa bf16 (issue 8's correctness bar).
#    PREDICTED: all pass, bf16 errors ~2.06e-3 / 2.08e-3 (session 30), 0 errors / hazards.
. "$(dirname "$0")/env.sh" call1b model_gpu:b/model_gpu.xz wk:b/wk.xz wdf:b/wdf.xz
MOA_TEST_FULL=1 timeout 170 /tmp/model_gpu --test-threads 8 > "$R/model_gpu.txt" 2>&1; el "model_gpu full rc=$?"
grep -E "FAILED|test result|panicked" "$R/model_gpu.txt" | cut -c1-240 | tee -a "$R/times.txt"; save
MOA_TEST_FULL=1 timeout 60 /tmp/wk --test-threads 8 > "$R/wk.txt" 2>&1; el "wgpu_kernels full rc=$?"
grep -E "FAILED|test result|panicked|adapter" "$R/wk.txt" | cut -c1-240 | tee -a "$R/times.txt"; save
MOA_TEST_FULL=1 timeout 60 /tmp/wdf --test-threads 8 > "$R/wdf.txt" 2>&1; el "wgsl_decode_forms full rc=$?"
grep -E "FAILED|test result|panicked" "$R/wdf.txt" | cut -c1-240 | tee -a "$R/times.txt"; save
el done; save
