#!/bin/bash
# Session 46, lead call 3 (wgpu through Vulkan; carry .dev-lead40): the scalar prefill attention (what a GPU without
# matrix units runs, and every adapter with MOA_WGPU_COOP_ATTN=0) in session 46's form against the loop form.
#   N = wpe.xz (prefill.wgsl.j2 with the head-dim loops written out and the online softmax one key at a time, no
#       private score array); O = wpe45.xz (23d53587: loops, a private score array a tile).
# QUESTION: does writing the loops out take the scalar attention off local memory? Call 1 (H100): 2 040 ms a pass
# (68 ms a layer, ~3.4 TFLOP/s) with MOA_WGPU_COOP=0. PREDICTION: N's attention <= 0.5x O's (two runs each, A/B/A/B);
# parity equal (max |logit err| ~0.05, argmax 3/3).
# env.sh = benches/lead-h200/s40/env.sh, beside this script in the carry folder .dev-lead40.
. "$(dirname "$0")/env.sh" s46c3 wpe wpe45
unset MOA_WGPU_COOP_ATTN
sm() { local tag=$1 bin=$2 new=$3; shift 3
  env "$@" timeout 120 /tmp/$bin --like smollm2-135m --rows 16 --prompt 4096 --new $new --profile 5 --parity 8 $S > "$R/$tag.txt" 2>&1
  el "$tag rc=$? $(sed -n '/prefill pass 1 per dispatch kind/,$p' $R/$tag.txt | grep -E '^ +(attention|step):' | awk '{printf "%s %s ms; ", $1, $4/1000}') $(grep -o -E 'prefill: [^;]*' $R/$tag.txt | tr '\n' ' ') $(grep -o 'max |logit err| [0-9.]* against the CPU reference, argmax equal [0-9/]*' $R/$tag.txt | tr '\n' ' ')"; save; }
S="--plan plans/smollm2-135m-moa-50.toml --profile-prefill"
for rep in 1 ${SHORT:+x} 2; do
  [ "$rep" = x ] && break
  sm N-nocoop$rep wpe 8 MOA_WGPU_COOP=0
  sm O-nocoop$rep wpe45 8 MOA_WGPU_COOP=0
done
[ -n "$SHORT" ] && { el done; exit 0; }  # SHORT=1: one N/O pair, no dense pair
S="--plan dense --profile-prefill"
sm N-dense-attn0 wpe 8 MOA_WGPU_COOP_ATTN=0
sm O-dense-attn0 wpe45 8 MOA_WGPU_COOP_ATTN=0
el done
