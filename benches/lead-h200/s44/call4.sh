#!/bin/bash
# Session 44, lead call 4 (wgpu through Vulkan). Carry .dev-lead40: wpe.xz = wgpu_products_engine of 1ace39ee
# (N: a module whose layers all have the same rules keeps them baked), wpe43.xz = the same example of 20aaa159
# (O: session 43's, the rules table on every module), gl/, env.sh. Run: bash .dev-lead40/s44-call4.sh.
# (1) SmolLM2 16 x 4096, dense and uniform-50 (every layer the same rules), N against O, A B B A, each a process.
# PREDICTED (session 43 call 3: dense 19.80 T vs 19.49 B, one rule 15.36 vs 15.04 us a layer): N's attention
# ~0.3 us a layer below O's on both plans, tokens/s +0.5..1%, parity unchanged.
# (2) session 43's next-1b8b without the 8B runs: the upstream 1B plan T (table) / B (MOA_WGSL_RULES_TABLE=0)
# alternating, each in its own process, 256 steps, no profile; then dense (N). PREDICTED: T above B by ~8-10% tok/s.
. "$(dirname "$0")/env.sh" s44c4 wpe wpe43
unset MOA_WGPU_COOP_ATTN
P1=$U/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json
sm() { local tag=$1 bin=$2; timeout 80 /tmp/$bin --like smollm2-135m --rows 16 --prompt 4096 --new 256 --profile 5 --parity 8 \
    --plan dense --plan plans/smollm2-135m-uniform-50.toml > "$R/$tag.txt" 2>&1
  el "$tag rc=$? $(grep -o -E 'decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s' $R/$tag.txt | tr '\n' ';') $(grep -E '^ *attention:' $R/$tag.txt | awk '{printf "attn %s us/disp; ", $8}') $(grep -o 'max |logit err| [0-9.]*' $R/$tag.txt | tr '\n' ' ')"; save; }
sm smol-N1 wpe; sm smol-O1 wpe43; sm smol-O2 wpe43; sm smol-N2 wpe
one() { local tag=$1 plan=$2; shift 2
  env "$@" timeout 90 /tmp/wpe --like llama-3.2-1b --rows 4 --prompt 4096 --new 256 --profile 0 --parity 0 --plan $plan > "$R/$tag.txt" 2>&1
  el "$tag rc=$? $(grep -o -E 'decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s' $R/$tag.txt | tail -1)"; save; }
one 1b-T1 $P1; one 1b-B1 $P1 MOA_WGSL_RULES_TABLE=0; one 1b-B2 $P1 MOA_WGSL_RULES_TABLE=0; one 1b-T2 $P1
one 1b-D1 dense
el done
