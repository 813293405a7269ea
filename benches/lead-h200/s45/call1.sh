#!/bin/bash
# Session 45, lead call 1 (wgpu through Vulkan; carry .dev-lead40): session 44's call 6 (benches/lead-h200/s44/call6.sh,
# its question and prediction: parity of the scalar prefill's rules table on a GPU; N = wpe.xz of main with session
# 45's linear_tiled.wgsl against O = wpe43.xz, 20aaa159), plus the prefill products without matrix units
# (MOA_WGPU_COOP=0) four ways, one plan (the products are the same for every plan), --profile-prefill:
#   T  = linear_tiled.wgsl, 64 x 64 output tiles, K staged in workgroup memory (new; the default on GPU adapters);
#   T8 = its 128 x 128 tiles (MOA_WGPU_TILED_BLOCK=8);
#   W  = linear_words.wgsl (MOA_WGPU_TILED=0: f16 weights eight a load, a 4 x 4 block an invocation);
#   B  = O's linear.wgsl (the 4 x 4 block, one f16 a load).
# QUESTION: what a GPU without matrix units gets for its prefill products. PREDICTION: T's products >= 3x W's and
# B's (each weight read once per 64 rows instead of per 4), T8 above T; W and B within 30% of each other.
. "$(dirname "$0")/env.sh" s45c1 wpe wpe43
unset MOA_WGPU_COOP_ATTN
S="--plan dense --plan plans/smollm2-135m-uniform-50.toml --plan plans/smollm2-135m-moa-50.toml"
sm() { local tag=$1 bin=$2 new=$3; shift 3
  env "$@" timeout 150 /tmp/$bin --like smollm2-135m --rows 16 --prompt 4096 --new $new --profile 5 --parity 8 $S > "$R/$tag.txt" 2>&1
  el "$tag rc=$? $(sed -n '/prefill pass 1 per dispatch kind/,/^[^ ]/p' $R/$tag.txt | grep -E '^ +(qkv|out|gate_up|down|attention|head)' | awk '{printf "%s %s %s; ", $1, $2, $3}') $(grep -o -E '= [0-9]+ tok/s; decode' $R/$tag.txt | tr '\n' ' ') | $(grep -o -E '= [0-9]+ tok/s; KV' $R/$tag.txt | tr '\n' ' ') $(grep -E '^ *attention:' $R/$tag.txt | awk '{printf "attn %s; ", $8}') $(grep -o 'max |logit err| [0-9.]* against the CPU reference, argmax equal [0-9/]*' $R/$tag.txt | tr '\n' ' ')"; save; }
# (--profile-prefill: the prefill pass's dispatch kinds, in the raw files.)
# (one plan: the products are the same for every plan)
S="--plan plans/smollm2-135m-moa-50.toml --profile-prefill"
sm tiled-T wpe 32 MOA_WGPU_COOP=0
sm tiled8-T8 wpe 32 MOA_WGPU_COOP=0 MOA_WGPU_TILED_BLOCK=8
sm words-W wpe 32 MOA_WGPU_COOP=0 MOA_WGPU_TILED=0
sm block-B wpe43 32 MOA_WGPU_COOP=0
S="--plan dense --plan plans/smollm2-135m-uniform-50.toml --plan plans/smollm2-135m-moa-50.toml"
sm scalar-prefill-N wpe 32 MOA_WGPU_COOP_ATTN=0
[ -n "$SHORT" ] || { sm N1 wpe 256; sm O1 wpe43 256; }
el done
