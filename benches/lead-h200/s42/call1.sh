#!/bin/bash
# Session 42, lead call 2 (after s41/call1.sh, run in session 42's call 1 on an H100: half-N spans with one or two
# rules take 0.73x dense's attention, a quarter/N mix within groups = dense, but the upstream 1B plan 1.16x dense
# with 0.66 of its bytes, and its loads-only twin 0.73x: the loss is in the real kernel's work on that plan).
# Carry .dev-lead40 (wpe.xz, wdb.xz (wgpu_decode_bench), gl/, env.sh as s40/call1.sh says, this script as s42-call1.sh); run bash .dev-lead40/s42-call1.sh.
# Probes (benches/lead-h200/s41/plans), each isolating one trait of the upstream plan:
#   beta     one rule, alpha -1024 + 0.75 N (beta > 0), uniform: against half-1rule (beta 0, 2064)
#   segmix   segments of two lengths in a row (4 KV heads at 512, 4 at N), each group uniform
#   up-l0    the upstream plan's layer-0 rules on every layer (two rules mixed within groups, beta > 0)
#   wrapmask 1032 / 2064 alternating within groups, beta 0 (every ring wraps, half the heads masked)
# PREDICTED: the trait that costs shows up as a probe at >= dense's time with fewer bytes; beta and segmix as
# half-1rule (~0.73x dense) if they are sound.
# Passes: default, the loads-only twin (MOA_WGSL_SG_DECODE=read), the separate merge (MOA_WGSL_FUSED_MERGE=0), default.
. "$(dirname "$0")/env.sh" s42c1 wpe wdb
P=benches/lead-h200/s41/plans
# Registers of each probe's layer-0/1 decode in the engine's form (flat on subgroups, 16-byte words, class maxima,
# fused merge; wdb = wgpu_decode_bench of the same commit): a plan whose decode takes more than 128 registers a
# lane gets one workgroup of 256 an SM, not two, and its one-wave list runs in two.
for p in half-1rule half-2rules quarter-full beta segmix up-l0 wrapmask upstream; do
  echo "== regs $p" >> "$R/regs.txt"
  MOA_WGSL_SG_FLAT_WORDS=1 MOA_WGSL_SG_FLAT_CMAX=1 MOA_WGSL_FUSED_MERGE=1 timeout 60 /tmp/wdb regs $P/l1b-$p.toml - 0,1 >> "$R/regs.txt" 2>&1
done
el "regs"; grep -E "^==|regs layer" "$R/regs.txt" | cut -c1-200 | tee -a "$R/times.txt"; save
for rep in 1 read sep 2; do
case $rep in read) export MOA_WGSL_SG_DECODE=read;; sep) unset MOA_WGSL_SG_DECODE; export MOA_WGSL_FUSED_MERGE=0;; *) unset MOA_WGSL_SG_DECODE MOA_WGSL_FUSED_MERGE;; esac
timeout 120 /tmp/wpe --like llama-3.2-1b --rows 4 --prompt 4096 --new 32 --profile 5 --parity 0 --plan dense \
  --plan $P/l1b-half-1rule.toml --plan $P/l1b-beta.toml --plan $P/l1b-segmix.toml --plan $P/l1b-up-l0.toml \
  --plan $P/l1b-wrapmask.toml --plan $P/l1b-upstream.toml > "$R/r$rep.txt" 2>&1
el "rep $rep rc=$?"; grep -E "^==|^ *(attention|step):" "$R/r$rep.txt" | sed 's/: wgpu NVIDIA.*//' | cut -c1-150 | tee -a "$R/times.txt"; save
done
