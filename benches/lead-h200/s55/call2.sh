#!/bin/bash
# Session 55, lead call 2: tests/model_gpu.rs again after call 1's one failure,
# `precompiled_kernels_load_from_a_moa_compile_folder`: on a GPU adapter the engine's own compile takes
# the GPU prefill forms (two keys a step, 128 queries a workgroup, session 47) that moa-compile's folder
# does not, so its prefill logits differed from the folder's in the last bits (~1e-6). The test now asks
# bit-equality of the folder against the same kernels handed over in process, and f32 rounding (1e-4)
# against the engine's own compile on GPUs. Carry: .dev-s55 (as call 1's) with c/mg.xz (the debug test binary).
# PREDICTED: 32 passed, 1 ignored.
SESSION=s55; . "$(dirname "$0")/env.sh" call2 mg:c/mg.xz
(cd /work/main && timeout 240 /tmp/mg > "$R/model_gpu.txt" 2>&1); el "model_gpu rc=$? $(grep 'test result' "$R/model_gpu.txt")"
grep -E 'FAILED|panicked' "$R/model_gpu.txt" | head -20 | tee -a "$R/times.txt"
el done; save
