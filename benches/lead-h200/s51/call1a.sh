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
. "$(dirname "$0")/env.sh" call1a ce:a/ce.xz cuda_check:a/cuda_check.xz
U=tests/fixtures/upstream-plans
# The correctness bar of issue 8: both upstream plans at once (CPU reference on 16 cores).
( timeout 250 /tmp/cuda_check --upstream $U/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json --kv-heads 32 --dtypes f16,bf16 > "$R/cc-vicuna.txt" 2>&1; echo "rc=$?" >> "$R/cc-vicuna.txt" ) &
( timeout 250 /tmp/cuda_check --upstream $U/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json --kv-heads 8 --dtypes f16,bf16 > "$R/cc-llama.txt" 2>&1; echo "rc=$?" >> "$R/cc-llama.txt" ) &
wait; el "cuda_check done (both plans at once)"
for f in cc-vicuna cc-llama; do tail -6 "$R/$f.txt" | cut -c1-240 | sed "s/^/$f: /" | tee -a "$R/times.txt"; done; save
timeout 100 /tmp/ce --test-threads 1 > "$R/ce.txt" 2>&1; el "cuda_engine rc=$?"
grep -E "^test |test result" "$R/ce.txt" | tee -a "$R/times.txt"; save
timeout 60 compute-sanitizer --tool memcheck /tmp/cuda_check plans/fixture-gqa.toml --dtypes bf16 > "$R/san-mem.txt" 2>&1; el "memcheck rc=$?"
timeout 60 compute-sanitizer --tool racecheck /tmp/cuda_check plans/fixture-gqa.toml --dtypes bf16 > "$R/san-race.txt" 2>&1; el "racecheck rc=$?"
grep -h -E "ERROR SUMMARY|RACECHECK SUMMARY|hazard" "$R"/san-*.txt | tee -a "$R/times.txt"; save
el done; save
