#!/bin/bash
# Session 55, lead call 1: main after 63fffe3f (every weight binding now goes through Part::storage; CPU
# adapters keep their weights only as textures) on a real GPU through Vulkan, where the texture form is off:
# (1) tests/model_gpu.rs (debug test binary of 63fffe3f), (2) SmolLM2-shape decode, 16 x 4096, moa-50,
# 256 greedy tokens, MOA_WGPU_COOP_ATTN=0: N = wpe of 63fffe3f against O = wpe of 9f71fa2c (session 54's
# build), N O O N N O. Carry: .dev-s55 = this folder + benches/lead-h200/s51/env.sh + c/{wpe,wpe0,mg}.xz + gl/.
# PREDICTED: model_gpu all pass (33, 1 ignored); N and O within their run-to-run spread (the refactor only
# moves where a binding's buffer comes from); parity 0.0543, 3/3; the load line names no textures.
SESSION=s55; . "$(dirname "$0")/env.sh" call1 wpe:c/wpe.xz wpe0:c/wpe0.xz mg:c/mg.xz
(cd /work/main && timeout 240 /tmp/mg > "$R/model_gpu.txt" 2>&1); el "model_gpu rc=$? $(grep 'test result' "$R/model_gpu.txt")"
grep -E 'FAILED|panicked' "$R/model_gpu.txt" | head -20 | tee -a "$R/times.txt"; save
WPE=/tmp/wpe dec N1 5 24; WPE=/tmp/wpe0 dec O1 5 24
WPE=/tmp/wpe0 dec O2 1 0; WPE=/tmp/wpe dec N2 1 0
WPE=/tmp/wpe dec N3 1 0; WPE=/tmp/wpe0 dec O3 1 0
grep -c -i texture "$R/N1.txt" | sed 's/^/texture mentions in N1: /' | tee -a "$R/times.txt"
el done; save
