#!/bin/bash
# Session 56, lead call 1: main after the rows forms of linear_words.wgsl, ModelRef (engines built from
# &Model or &mut Model), round 42 and tiles.keys_per_step, on a real GPU through Vulkan: tests/model_gpu.rs
# (debug test binary of b9f1c3ad). Carry: .dev-s56 = this folder + benches/lead-h200/s51/env.sh + c/mg.xz + gl/.
# PREDICTED: all pass (32, 1 ignored), as on lavapipe; no kernel a GPU adapter runs by default changed.
SESSION=s56; . "$(dirname "$0")/env.sh" call1 mg:c/mg.xz
(cd /work/main && timeout 300 /tmp/mg > "$R/model_gpu.txt" 2>&1); el "model_gpu rc=$? $(grep 'test result' "$R/model_gpu.txt")"
grep -E 'FAILED|panicked' "$R/model_gpu.txt" | head -20 | tee -a "$R/times.txt"; el done; save
