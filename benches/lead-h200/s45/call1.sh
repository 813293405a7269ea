#!/bin/bash
# Session 45, lead call 1 (wgpu through Vulkan; carry .dev-lead40): session 44's call 6 (benches/lead-h200/s44/call6.sh,
# its question and prediction) with wpe.xz rebuilt from e0e03da9 (N) against wpe43.xz (O, 20aaa159), plus the tiled
# products without matrix units in BOTH binaries: N reads f16 weights eight at a time (linear_words.wgsl, 4 rows x 1
# column an invocation in the prefill), O the 4 x 4 block of linear.wgsl. linear_words was made for CPU adapters;
# QUESTION: does it cost a GPU without matrix units prefill speed? PREDICTION: none firm (O's 4x4 block reuses each
# x load over 4 columns, N's words reuse each weight load over 4 rows).
. "$(dirname "$0")/env.sh" s45c1 wpe wpe43
unset MOA_WGPU_COOP_ATTN
S="--plan dense --plan plans/smollm2-135m-uniform-50.toml --plan plans/smollm2-135m-moa-50.toml"
sm() { local tag=$1 bin=$2 new=$3; shift 3
  env "$@" timeout 150 /tmp/$bin --like smollm2-135m --rows 16 --prompt 4096 --new $new --profile 5 --parity 8 $S > "$R/$tag.txt" 2>&1
  el "$tag rc=$? $(grep -o -E '= [0-9]+ tok/s; decode' $R/$tag.txt | tr '\n' ' ') | $(grep -o -E '= [0-9]+ tok/s; KV' $R/$tag.txt | tr '\n' ' ') $(grep -E '^ *attention:' $R/$tag.txt | awk '{printf "attn %s; ", $8}') $(grep -o 'max |logit err| [0-9.]* against the CPU reference, argmax equal [0-9/]*' $R/$tag.txt | tr '\n' ' ')"; save; }
sm scalar-prefill-N wpe 32 MOA_WGPU_COOP_ATTN=0
# (--profile-prefill: the prefill pass's dispatch kinds, in the raw files.)
# (one plan: the products are the same for every plan)
S="--plan plans/smollm2-135m-moa-50.toml --profile-prefill"
sm tiled-T wpe 32 MOA_WGPU_COOP=0
sm words-W wpe 32 MOA_WGPU_COOP=0 MOA_WGPU_TILED=0
sm block-B wpe43 32 MOA_WGPU_COOP=0
S="--plan dense --plan plans/smollm2-135m-uniform-50.toml --plan plans/smollm2-135m-moa-50.toml"
sm N1 wpe 256; sm O1 wpe43 256
el done
