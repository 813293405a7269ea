#!/bin/bash
# Session 51, lead call 3: the decode tokens read in place (MOA_WGPU_FEED_IN_PLACE=1: the step reads the last
# argmax's buffer; no copy at the top of a step submitted ahead) against the copy (=0, every session's form),
# and the profile's boundary rows piece by piece (step_cbs_nofeed, step_passes). wpe built at the working tree
# after e9281ff8 + this change. SmolLM2 shape, 16 x 4096, moa-50, 256 greedy tokens, MOA_WGPU_COOP_ATTN=0.
# Call 2 (H100): step 1262-1337 us, step_submits 1333-1400, step_cbs 1333-1372, wall 1.29-1.30 ms/step.
# PREDICTED: step_cbs_nofeed - step_passes = the read-back copy's share; if the feed copy is most of the
# 63-71 us, P (in place) 3-5% more tokens/s than C in every pair; parity unchanged (0.0543, 3/3).
. "$(dirname "$0")/env.sh" call3 wpe:c/wpe.xz
dec C1 5 24 MOA_WGPU_FEED_IN_PLACE=0; dec P1 5 24 MOA_WGPU_FEED_IN_PLACE=1
dec P2 1 0 MOA_WGPU_FEED_IN_PLACE=1; dec C2 1 0 MOA_WGPU_FEED_IN_PLACE=0
dec C3 1 0 MOA_WGPU_FEED_IN_PLACE=0; dec P3 1 0 MOA_WGPU_FEED_IN_PLACE=1
dec P4 1 0 MOA_WGPU_FEED_IN_PLACE=1; dec C4 1 0 MOA_WGPU_FEED_IN_PLACE=0
el done; save
