#!/bin/bash
# Session 42, lead call 2 (after s41/call1.sh, run in session 42's call 1 on an H100: half-N spans with one or two
# rules take 0.73x dense's attention, a quarter/N mix within groups = dense, but the upstream 1B plan 1.16x dense
# with 0.66 of its bytes, and its loads-only twin 0.73x: the loss is in the real kernel's work on that plan).
# Carry .dev-lead40 (wpe.xz, gl/, env.sh as s40/call1.sh says, this script as s42-call1.sh); run bash .dev-lead40/s42-call1.sh.
# Probes (benches/lead-h200/s41/plans), each isolating one trait of the upstream plan:
#   beta     one rule, alpha -1024 + 0.75 N (beta > 0), uniform: against half-1rule (beta 0, 2064)
#   segmix   segments of two lengths in a row (4 KV heads at 512, 4 at N), each group uniform
#   up-l0    the upstream plan's layer-0 rules on every layer (two rules mixed within groups, beta > 0)
#   wrapmask 1032 / 2064 alternating within groups, beta 0 (every ring wraps, half the heads masked)
# PREDICTED: the trait that costs shows up as a probe at >= dense's time with fewer bytes; beta and segmix as
# half-1rule (~0.73x dense) if they are sound.
# Passes: default, the loads-only twin (MOA_WGSL_SG_DECODE=read), the separate merge (MOA_WGSL_FUSED_MERGE=0), default.
. "$(dirname "$0")/env.sh" s42c1 wpe
P=benches/lead-h200/s41/plans
for rep in 1 read sep 2; do
case $rep in read) export MOA_WGSL_SG_DECODE=read;; sep) unset MOA_WGSL_SG_DECODE; export MOA_WGSL_FUSED_MERGE=0;; *) unset MOA_WGSL_SG_DECODE MOA_WGSL_FUSED_MERGE;; esac
timeout 120 /tmp/wpe --like llama-3.2-1b --rows 4 --prompt 4096 --new 32 --profile 5 --parity 0 --plan dense \
  --plan $P/l1b-half-1rule.toml --plan $P/l1b-beta.toml --plan $P/l1b-segmix.toml --plan $P/l1b-up-l0.toml \
  --plan $P/l1b-wrapmask.toml --plan $P/l1b-upstream.toml > "$R/r$rep.txt" 2>&1
el "rep $rep rc=$?"; grep -E "^==|^ *(attention|step):" "$R/r$rep.txt" | sed 's/: wgpu NVIDIA.*//' | cut -c1-150 | tee -a "$R/times.txt"; save
done
