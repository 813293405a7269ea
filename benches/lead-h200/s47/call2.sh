#!/bin/bash
# Session 47, lead call 2 (wgpu through Vulkan; carry .dev-lead40): the scalar prefill attention with two keys a
# step and each score as four partial sums (P = wpe47.xz, the working tree after 39deec6c) against session 46's
# one key a step (N = wpe.xz, 31a3d905).
# QUESTION: is the one-key form bound by its score's chain of head_dim dependent FMAs? Call 1 (H100): N 403 ms a
# pass (moa-50, MOA_WGPU_COOP=0), 601 dense (MOA_WGPU_COOP_ATTN=0), ~15-17 TFLOP/s of f32 FMAs.
# PREDICTION: P's attention <= 0.75x N's (two runs each, P N P N); parity equal (max |logit err| ~0.05, argmax 3/3).
. "$(dirname "$0")/env.sh" s47c2 wpe wpe47
unset MOA_WGPU_COOP_ATTN
sm() { local tag=$1 bin=$2 new=$3; shift 3
  env "$@" timeout 120 /tmp/$bin --like smollm2-135m --rows 16 --prompt 4096 --new $new --profile 5 --parity 8 $S > "$R/$tag.txt" 2>&1
  el "$tag rc=$? $(sed -n '/prefill pass 1 per dispatch kind/,$p' $R/$tag.txt | grep -E '^ +(attention|step):' | awk '{printf "%s %s ms; ", $1, $4/1000}') $(grep -o -E 'prefill: [^;]*' $R/$tag.txt | tr '\n' ' ') $(grep -o 'max |logit err| [0-9.]* against the CPU reference, argmax equal [0-9/]*' $R/$tag.txt | tr '\n' ' ')"; save; }
S="--plan plans/smollm2-135m-moa-50.toml --profile-prefill"
for rep in 1 2; do
  sm P-nocoop$rep wpe47 8 MOA_WGPU_COOP=0
  sm N-nocoop$rep wpe 8 MOA_WGPU_COOP=0
done
S="--plan dense --profile-prefill"
sm P-dense-attn0 wpe47 8 MOA_WGPU_COOP_ATTN=0
sm N-dense-attn0 wpe 8 MOA_WGPU_COOP_ATTN=0
el done
