#!/bin/bash
# Session 42, prepared for the next session (not run: no device time left). Run after call2.sh (per-layer decode
# steps of the upstream 1B plan through wgpu_decode_bench) on the same warm machine.
# The engine's decode attention (wgpu_products_engine, as s42/call1.sh) over probes that vary across layers:
#   up-l1   the upstream plan's layer-1 rules on every layer (516 / 2072 mixed within groups: the widest mix)
#   up-l8   its layer-8 rules on every layer (516-span heads inside 4128-slot segments that never wrap)
#   alt01   layers 0 and 1 of the upstream plan alternating (two kinds of layer in one step)
# PREDICTED: if alt01 loses where up-l0 and up-l1 alone do not, the loss comes from layers that differ (lists,
# kernels, scratch shared between them); if up-l1 or up-l8 alone loses, from that layer's rules.
# Carry .dev-lead40 (wpe.xz built from this commit: cargo build --release --example wgpu_products_engine), gl/,
# env.sh); run bash .dev-lead40/s42-call3.sh.
. "$(dirname "$0")/env.sh" s42c3 wpe
P=benches/lead-h200/s41/plans
for rep in 1 2; do
timeout 120 /tmp/wpe --like llama-3.2-1b --rows 4 --prompt 4096 --new 32 --profile 5 --parity 0 --plan dense \
  --plan $P/l1b-half-1rule.toml --plan $P/l1b-up-l0.toml --plan $P/l1b-up-l1.toml --plan $P/l1b-up-l8.toml \
  --plan $P/l1b-alt01.toml --plan $P/l1b-upstream.toml > "$R/r$rep.txt" 2>&1
el "rep $rep rc=$?"; grep -E "^==|^ *(attention|step):" "$R/r$rep.txt" | sed 's/: wgpu NVIDIA.*//' | cut -c1-150 | tee -a "$R/times.txt"; save
done
