#!/bin/bash
# Session 51, lead call 2: what the boundaries between a request's decode steps cost (wpe built at f20d94f9:
# the decode profile's new rows step_submits / step_cbs), then call 1a (the CUDA checks).
# SmolLM2 shape, 16 rows x 4096, moa-50, 256 greedy tokens, MOA_WGPU_COOP_ATTN=0 (short load).
# PREDICTED (H200; session 43 call 3: wall 1.264 ms a step, profiled step 1.205): step_submits - step
# = 40-60 us a step; step_cbs - step = 5-20 us (the copies only); wall step ~= step_submits +- 10 us.
. "$(dirname "$0")/env.sh" call2 wpe:c/wpe.xz
dec M1 5 24; dec M2 5 0; dec M3 1 0
el "wpe done"
bash "$D/call1a.sh"
