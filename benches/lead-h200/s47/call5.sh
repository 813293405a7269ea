#!/bin/bash
# Session 47, lead call 5: 128 queries a workgroup (R = wpe128.xz) against 64 (Q = wpe64.xz, call 4).
# Call 4 (H100): Q 214 ms a moa-50 pass against 370 for 32 queries (MOA_WGPU_COOP=0). PREDICTION: R 0.85-1.0x of Q
# (the gain from 32 to 64 was workgroups an SM; 128 halves the workgroups again, a longer tail at row ends).
. "$(dirname "$0")/env.sh" s47c5 wpe64 wpe128
unset MOA_WGPU_COOP_ATTN
sm() { local tag=$1 bin=$2 new=$3; shift 3
  env "$@" timeout 120 /tmp/$bin --like smollm2-135m --rows 16 --prompt 4096 --new $new --profile 5 --parity 8 $S > "$R/$tag.txt" 2>&1
  el "$tag rc=$? $(sed -n '/prefill pass 1 per dispatch kind/,$p' $R/$tag.txt | grep -E '^ +(attention|step):' | awk '{printf "%s %s ms; ", $1, $4/1000}') $(grep -o 'max |logit err| [0-9.]* against the CPU reference, argmax equal [0-9/]*' $R/$tag.txt | tr '\n' ' ')"; save; }
S="--plan plans/smollm2-135m-moa-50.toml --profile-prefill"
for rep in 1 2; do
  sm R-nocoop$rep wpe128 8 MOA_WGPU_COOP=0
  sm Q-nocoop$rep wpe64 8 MOA_WGPU_COOP=0
done
S="--plan dense --profile-prefill"
sm R-dense-attn0 wpe128 8 MOA_WGPU_COOP_ATTN=0
sm Q-dense-attn0 wpe64 8 MOA_WGPU_COOP_ATTN=0
el done
