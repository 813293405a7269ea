#!/bin/bash
# Session 42, lead call 3 (after call1.sh: no single trait of the upstream 1B plan costs - beta > 0, segments of two
# lengths, its layer-0 rules on every layer, wrapped rings with masked heads each take what their bytes say - yet
# the whole plan takes 1.2x dense's decode attention; every probe has 16 identical layers, the plan 16 different).
# Per-layer decode steps through wgpu_decode_bench (`plan`: rows at N - 1, each layer alone, L2-cold copies;
# MOA_WGSL_SEQUENCE=1 also all layers back to back as the engine's profile times them), the engine's decode form.
# PREDICTED: if some layers of the plan are slow alone, their lists or masks are the cost; if every layer alone is
# at its bytes' time and only the sequence is slow, the cost is switching between 16 different kernels/lists.
# Carry .dev-lead40 (wdb.xz, gl/, env.sh); run bash .dev-lead40/s42-call2.sh.
. "$(dirname "$0")/env.sh" s42c2 wdb
P=benches/lead-h200/s41/plans
export MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late MOA_WGSL_SG_FLAT_WORDS=1 MOA_WGSL_SG_FLAT_CMAX=1 MOA_WGSL_FUSED_MERGE=1
export MOA_WGSL_SEQUENCE=1 MOA_COPY_MIB=256
L=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
# Registers of every layer's decode (call 1 read only layers 0 and 1: 127): a layer past 128 holds one workgroup
# of 256 an SM instead of two, and its list (184-260 items) runs in two waves.
MOA_WGSL_SEQUENCE=0 timeout 90 /tmp/wdb regs $P/l1b-upstream.toml - $L > "$R/regs.txt" 2>&1; el "regs rc=$?"
grep -E "regs layer" "$R/regs.txt" | sed 's/, Local_Memory_Size=[0-9]*//' | cut -c1-150 | tee -a "$R/times.txt"; save
run() { local tag=$1; shift; timeout 60 /tmp/wdb plan "$@" > "$R/$tag.txt" 2>&1; el "$tag rc=$?"; grep -vE '^\{' "$R/$tag.txt" | grep -E "layer|sequence|copy" | cut -c1-170 | tee -a "$R/times.txt"; save; }
MOA_WGSL_KV_RANDOM=1 run up-rand $P/l1b-upstream.toml $L 4 4128
MOA_WGSL_KV_RANDOM=1 run half-rand $P/l1b-half-1rule.toml 0,1 4 4128
run up-zero $P/l1b-upstream.toml $L 4 4128
MOA_WGSL_SEQUENCE=0 MOA_WGSL_CHUNKS=auto,512,1024 MOA_WGSL_KV_RANDOM=1 run up-chunks $P/l1b-upstream.toml 1,2,8 4 4128
MOA_WGSL_KV_RANDOM=1 run upl0-rand $P/l1b-up-l0.toml $L 4 4128
