#!/bin/bash
# Session 41, lead call 3 (after s40/call1.sh and call2.sh, which showed the span switch changes nothing and no
# fixed chunk makes the 1B upstream plan's decode attention faster than dense at 4 rows x 4096).
# Carry as s40/call1.sh says, plus benches/lead-h200/s41/plans; run: bash .dev-lead40/s41-call1.sh.
# Probes whose spans are below N: one rule of 2064 tokens (half of N; 0.5 of dense's bytes), the same with per-head
# windows one slot apart (two rules), and a quarter/N mix (dense bytes, half the heads masked).
# PREDICTED if the short-span path is sound: half-1rule ~0.5-0.6x dense's attention (10-12 us a layer), half-2rules
# the same, quarter-full = dense; if half-1rule is near dense, the cost is the span<N path (ring/sink segments), not
# per-head rules.
. "$(dirname "$0")/env.sh" c3 wpe
P=benches/lead-h200/s41/plans
# Passes: the default twice; MOA_WGSL_SG_DECODE=read (the flat decode's loads only: if the plans stay slow per
# byte, the cost is where they read, not their math); MOA_WGSL_SG_DECODE=0 (the scalar decode: is the loss the flat
# kernel's own).
for rep in 1 2 read scalar; do
case $rep in read) export MOA_WGSL_SG_DECODE=read;; scalar) export MOA_WGSL_SG_DECODE=0;; *) unset MOA_WGSL_SG_DECODE;; esac
timeout 100 /tmp/wpe --like llama-3.2-1b --rows 4 --prompt 4096 --new 32 --profile 5 --parity 0 --plan dense \
  --plan $P/l1b-half-1rule.toml --plan $P/l1b-half-2rules.toml --plan $P/l1b-quarter-full.toml \
  --plan $U/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json > "$R/r$rep.txt" 2>&1
el "rep $rep rc=$?"; grep -E "^==|KV cache|^ *(attention|step):" "$R/r$rep.txt" | cut -c1-150 | tee -a "$R/times.txt"; save
done
