#!/bin/bash
# Session 43, lead call 2. Call 1 (s42/call2.sh + call3.sh, on an H100) found every layer of the upstream 1B plan
# alone at its "fixed cost + bytes" time (16-23 us, sum 312 us) but the 16 layers back to back at 441 us, while
# 16 copies of its layer 0 take 301 back to back against 277 alone. The layers differ in their kernels (each
# layer's rules are immediates of its own shader): 16 pipelines of ~44 KB of code each.
# PREDICTED (instruction-cache hypothesis): l1b-half-distinct (16 shader texts, the same work as l1b-half-1rule)
# is slower back to back than l1b-half-1rule by ~8 us a layer; l1b-half-two (2 texts) is not.
# Carry .dev-lead40 (wdb.xz, wpe.xz, gl/, env.sh); run bash .dev-lead40/s43-call2.sh.
. "$(dirname "$0")/env.sh" s43c2 wdb wpe
P=benches/lead-h200/s41/plans; Q=benches/lead-h200/s43/plans
export MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late MOA_WGSL_SG_FLAT_WORDS=1 MOA_WGSL_SG_FLAT_CMAX=1 MOA_WGSL_FUSED_MERGE=1
export MOA_WGSL_SEQUENCE=only MOA_COPY_MIB=256 MOA_WGSL_KV_RANDOM=1
L=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
run() { local tag=$1; shift; timeout 60 /tmp/wdb plan "$@" > "$R/$tag.txt" 2>&1; el "$tag rc=$?"; grep -vE '^\{' "$R/$tag.txt" | grep -E "sequence|copy" | cut -c1-170 | tee -a "$R/times.txt"; save; }
for rep in 1 2; do
run half1-$rep $P/l1b-half-1rule.toml $L 4 4128
run distinct-$rep $Q/l1b-half-distinct.toml $L 4 4128
run two-$rep $Q/l1b-half-two.toml $L 4 4128
done
unset MOA_WGSL_SEQUENCE MOA_WGSL_KV_RANDOM
timeout 150 /tmp/wpe --like llama-3.2-1b --rows 4 --prompt 4096 --new 32 --profile 5 --parity 0 --plan dense \
  --plan $P/l1b-half-1rule.toml --plan $Q/l1b-half-distinct.toml --plan $Q/l1b-half-two.toml --plan $P/l1b-upstream.toml > "$R/wpe.txt" 2>&1
el "wpe rc=$?"; grep -E "^==|^ *(attention|step):" "$R/wpe.txt" | sed 's/: wgpu NVIDIA.*//' | cut -c1-150 | tee -a "$R/times.txt"; save
