#!/bin/bash
# Session 51, lead call 2: what the boundaries between a request's decode steps cost (wpe built at f20d94f9:
# the decode profile's new rows step_submits / step_cbs), then call 1a (the CUDA checks).
# SmolLM2 shape, 16 rows x 4096, moa-50, 256 greedy tokens, MOA_WGPU_COOP_ATTN=0 (short load).
# PREDICTED (H200; session 43 call 3: wall 1.264 ms a step, profiled step 1.205): step_submits - step
# = 40-60 us a step; step_cbs - step = 5-20 us (the copies only); wall step ~= step_submits +- 10 us.
. "$(dirname "$0")/env.sh" call2 wpe:c/wpe.xz
P=plans/smollm2-135m-moa-50.toml
dec() { local name=$1 prof=$2 par=$3; shift 3
  env MOA_WGPU_COOP_ATTN=0 "$@" timeout 45 /tmp/wpe --like smollm2-135m --rows 16 --new 256 --profile $prof --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -E '^decode:' $R/$name.txt | head -2 | tr '\n' ' ' | cut -c1-220) $(grep -o -E 'max .logit err. [^,]*, argmax equal [0-9/]+' $R/$name.txt)"
  grep -E "^ *(attention|step|probe|step_submits|step_cbs):" "$R/$name.txt" | tee -a "$R/times.txt"; save; }
dec M1 5 24; dec M2 5 0; dec M3 1 0
el "wpe done"
bash "$D/call1a.sh"
