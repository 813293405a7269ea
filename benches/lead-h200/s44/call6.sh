#!/bin/bash
# Session 44, lead call 6 (NOT RUN: no device was lent after call 4; for the next session). Rebuild wpe.xz from main
# first (cargo build --release --example wgpu_products_engine; xz -9 -c target/release/examples/wgpu_products_engine >
# .dev-lead40/wpe.xz; wpe43.xz is 20aaa159's), carry .dev-lead40. wpe.xz = wgpu_products_engine of main (N: the
# scalar prefill and the decodes read the rules table; a plan of one rule set keeps it baked in ONE text), wpe43.xz =
# 20aaa159's (O: session 43, the decode table on every module, the prefill a text a layer).
# (1) parity of N on the GPU with the engine's default (matrix-unit prefill) and with MOA_WGPU_COOP_ATTN=0 (the scalar
#     prefill, which now reads the table: first run on a GPU), dense / uniform-50 / moa-50;
# (2) N against O, SmolLM2 16 x 4096, the three plans in one process, N O O N.
# PREDICTION: parity as session 43 (0.0534-0.0540, argmax 3/3) in every run; N's dense and uniform attention ~0.3 us a
# layer below O's (one baked text against the table), moa-50 the same.
. "$(dirname "$0")/env.sh" s44c6 wpe wpe43
unset MOA_WGPU_COOP_ATTN
S="--plan dense --plan plans/smollm2-135m-uniform-50.toml --plan plans/smollm2-135m-moa-50.toml"
sm() { local tag=$1 bin=$2 new=$3; shift 3
  env "$@" timeout 120 /tmp/$bin --like smollm2-135m --rows 16 --prompt 4096 --new $new --profile 5 --parity 8 $S > "$R/$tag.txt" 2>&1
  el "$tag rc=$? $(grep -o -E '= [0-9]+ tok/s; KV' $R/$tag.txt | tr '\n' ' ') $(grep -E '^ *attention:' $R/$tag.txt | awk '{printf "attn %s; ", $8}') $(grep -o 'max |logit err| [0-9.]* against the CPU reference, argmax equal [0-9/]*' $R/$tag.txt | tr '\n' ' ')"; save; }
sm scalar-prefill-N wpe 32 MOA_WGPU_COOP_ATTN=0
# The tiled products (linear_words.wgsl since 9ed74287) on a GPU: matrix units off.
sm tiled-products-N wpe 32 MOA_WGPU_COOP=0
sm N1 wpe 256; sm O1 wpe43 256; sm O2 wpe43 256; sm N2 wpe 256
el done
