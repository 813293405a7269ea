#!/bin/bash
# Session 47, lead call 6: 256 queries a workgroup (S = wpe256.xz: 74f7374f with ENGINE_GPU_PREFILL_Q_TILE = 256) against 128 (R = wpe128.xz, call 5).
# Call 5 (H100): R 182 ms a moa-50 pass (MOA_WGPU_COOP=0), 259 dense. PREDICTION: S 0.9-1.05x of R (the workgroups an SM
# no longer bind at 128; 256 halves the workgroups again and lengthens the row-end tail).
. "$(dirname "$0")/env.sh" s47c6 wpe128 wpe256
unset MOA_WGPU_COOP_ATTN
sm() { local tag=$1 bin=$2 new=$3; shift 3
  env "$@" timeout 120 /tmp/$bin --like smollm2-135m --rows 16 --prompt 4096 --new $new --profile 5 --parity 8 $S > "$R/$tag.txt" 2>&1
  el "$tag rc=$? $(sed -n '/prefill pass 1 per dispatch kind/,$p' $R/$tag.txt | grep -E '^ +(attention|step):' | awk '{printf "%s %s ms; ", $1, $4/1000}') $(grep -o 'max |logit err| [0-9.]* against the CPU reference, argmax equal [0-9/]*' $R/$tag.txt | tr '\n' ' ')"; save; }
S="--plan plans/smollm2-135m-moa-50.toml --profile-prefill"
for rep in 1 2; do
  sm S-nocoop$rep wpe256 8 MOA_WGPU_COOP=0
  sm R-nocoop$rep wpe128 8 MOA_WGPU_COOP=0
done
S="--plan dense --profile-prefill"
sm S-dense-attn0 wpe256 8 MOA_WGPU_COOP_ATTN=0
sm R-dense-attn0 wpe128 8 MOA_WGPU_COOP_ATTN=0
el done
