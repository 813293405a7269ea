#!/bin/bash
# Run in session 41 (results: call1/, RESULTS.md "Session 41, lead calls 1 and 2"). To run it from the repository root:
#   cargo build --release --example wgpu_products_engine && mkdir -p .dev-lead40 && bash benches/gl-debs.sh .dev-lead40/gl
#   xz -9 -c target/release/examples/wgpu_products_engine > .dev-lead40/wpe.xz
#   git worktree add /tmp/moa-old 5a04b8e6 && (cd /tmp/moa-old && cargo build --release --example wgpu_products_engine) \
#     && xz -9 -c /tmp/moa-old/target/release/examples/wgpu_products_engine > .dev-lead40/wpe-old.xz
#   cp benches/lead-h200/s40/*.sh .dev-lead40/; then the device tool: bash .dev-lead40/call1.sh (carry [".dev-lead40"], timeout_s 600).
# Session 40, lead call 1: does the span switch (commit 7537bcd5, templates/wgsl/span.wgsl.j2) give the
# upstream plans their decode gain on the 1B shape at 4 rows x 4096? Session 39 measured the plan's decode
# attention slower than dense (22.5 against 19.0 us a layer) while reading 0.65 of dense's KV bytes. The old
# binary (5a04b8e6: per-call function-scope arrays of the rules) against the new, A B A B, each with dense,
# two probe plans whose every span is N (dense's bytes; one rule, and two rules alternating inside each GQA
# group) and the 1B upstream plan.
# PREDICTED, if the arrays were the cost: old 1 rule = dense, old 2 rules 2-4 us slower; new 2 rules = dense and
# the new upstream plan's attention 13-16 us (0.65 of dense's bytes). If old 2 rules = dense too, the cost lies
# in the plan's shorter chunks and merges (call 2's chunk sweep).
# Then SmolLM2 16 x 4096 with moa-50, old against new; XFIRST A/B on the 1B and SmolLM2 at 1 row (4-row sets against MOA_WGPU_SG_ROWS=8), as session 39's unrun call 4.
. "$(dirname "$0")/env.sh" c1 wpe wpe-old
P=benches/lead-h200/s39/plans
rules() { local name=$1 bin=$2
  timeout 80 /tmp/$bin --like llama-3.2-1b --rows 4 --prompt 4096 --new 32 --profile 5 --parity 24 --plan dense \
    --plan $P/l1b-full-1rule.toml --plan $P/l1b-full-2rules.toml --plan $U/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json > "$R/$name.txt" 2>&1
  el "$name ($bin) rc=$?"; grep -E "^==|parity|^ *(attention|step):" "$R/$name.txt" | cut -c1-120 | tee -a "$R/times.txt"; save; }
rules RA1 wpe-old; rules RB1 wpe; rules RA2 wpe-old; rules RB2 wpe
# The default model's headline case (SmolLM2 16 x 4096, moa-50: 9 query heads, up to 9 rules a layer, the
# span lookups 3 a work item), old binary against new, A B A B. PREDICTED: the new step 1-3% shorter
# (attention 19-20 us a layer -> 18-19.5), tokens/s 11.6-11.7k -> 11.8-12.0k; parity unchanged (0.0534-0.0697).
sp() { local name=$1 bin=$2
  timeout 60 /tmp/$bin --like smollm2-135m --rows 16 --prompt 4096 --new 256 --profile 5 --parity 24 --plan plans/smollm2-135m-moa-50.toml > "$R/$name.txt" 2>&1
  el "$name ($bin) rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -E 'parity|^ *(attention|step): ' $R/$name.txt | sed -E 's/ +/ /g' | cut -c1-60 | tr '\n' ' ')"; }
sp PA1 wpe-old; sp PB1 wpe; sp PA2 wpe-old; sp PB2 wpe; save
xf() { local name=$1; shift
  env "$@" timeout 40 /tmp/wpe --like llama-3.2-1b --rows 4 --prompt 4096 --new 64 --profile 5 --parity 0 --plan dense > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -E '^ *(gate_up|down|head|step): ' $R/$name.txt | sed -E 's/ +/ /g' | cut -d'(' -f2 | cut -c1-20 | tr '\n' ' ')"; }
xf XA1; xf XB1 MOA_WGPU_SG_XFIRST=1; xf XA2; xf XB2 MOA_WGPU_SG_XFIRST=1; save
sm() { local name=$1; shift
  env "$@" timeout 30 /tmp/wpe --like smollm2-135m --rows 1 --prompt 1024 --new 256 --profile 5 --parity 0 --plan dense > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -E '^ *step: ' $R/$name.txt | head -1 | cut -c1-90)"; }
sm SA1; sm SB1 MOA_WGPU_SG_ROWS=8; sm SA2; sm SB2 MOA_WGPU_SG_ROWS=8; save
