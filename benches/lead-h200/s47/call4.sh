#!/bin/bash
# Session 47, lead call 4 (wgpu through Vulkan; carry .dev-lead40): the scalar prefill with 64 queries a workgroup
# (Q = wpe64.xz: 455ce1d4 with WGSL_PREFILL_Q_TILE = 64) against 32 (P = wpe47.xz, call 2's pair form = what the
# engine runs on GPUs since 96d72145). Both take two keys a step.
# QUESTION: does sharing each staged K/V tile between two warps (half the workgroups, half the staging a query)
# pay? Call 2 (H100): P 369-370 ms a moa-50 pass (MOA_WGPU_COOP=0). PREDICTION: Q within 0.95-1.0x of P (the
# staging is ~6% of a tile's work; occupancy is bound by registers either way).
. "$(dirname "$0")/env.sh" s47c4 wpe47 wpe64
unset MOA_WGPU_COOP_ATTN
sm() { local tag=$1 bin=$2 new=$3; shift 3
  env "$@" timeout 120 /tmp/$bin --like smollm2-135m --rows 16 --prompt 4096 --new $new --profile 5 --parity 8 $S > "$R/$tag.txt" 2>&1
  el "$tag rc=$? $(sed -n '/prefill pass 1 per dispatch kind/,$p' $R/$tag.txt | grep -E '^ +(attention|step):' | awk '{printf "%s %s ms; ", $1, $4/1000}') $(grep -o 'max |logit err| [0-9.]* against the CPU reference, argmax equal [0-9/]*' $R/$tag.txt | tr '\n' ' ')"; save; }
S="--plan plans/smollm2-135m-moa-50.toml --profile-prefill"
for rep in 1 2; do
  sm Q-nocoop$rep wpe64 8 MOA_WGPU_COOP=0
  sm P-nocoop$rep wpe47 8 MOA_WGPU_COOP=0
done
el done
