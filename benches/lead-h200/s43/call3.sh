#!/bin/bash
# Session 43, lead call 3: the flat decode with its rules read from a per-layer table (WgslTuning::decode_rules_table,
# MOA_WGSL_RULES_TABLE; one source and one pipeline for every layer of a shape) against the rules baked into each
# layer's shader (MOA_WGSL_RULES_TABLE=0, the form of every earlier session). Call 2 (H100): 16 layers of identical
# work in 16 shader texts took 22.3-23.2 us a layer back to back against 17.7 in one or two texts; the engine's decode
# attention 21.6 against 15.4.
# PREDICTED: with the table the upstream 1B plan's sequence drops from ~27.6 to ~19.5 us a layer (its layers' sum
# alone), its engine attention from ~24.7 to ~16-17 us a layer (below dense's ~21); half-distinct = half-1rule;
# SmolLM2 moa-50 (30 layers of different rules) gains tokens/s (~5 us a layer of 1.37 ms: up to +10%).
# Carry .dev-lead40 (wdb.xz, wpe.xz built from this commit, gl/, env.sh); run bash .dev-lead40/s43-call3.sh.
. "$(dirname "$0")/env.sh" s43c3 wdb wpe
P=benches/lead-h200/s41/plans; Q=benches/lead-h200/s43/plans
(
export MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late MOA_WGSL_SG_FLAT_WORDS=1 MOA_WGSL_SG_FLAT_CMAX=1 MOA_WGSL_FUSED_MERGE=1
export MOA_WGSL_SEQUENCE=only MOA_COPY_MIB=256 MOA_WGSL_KV_RANDOM=1
L=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
run() { local tag=$1; shift; timeout 60 /tmp/wdb plan "$@" > "$R/$tag.txt" 2>&1; el "$tag rc=$?"; grep -vE '^\{' "$R/$tag.txt" | grep -E "sequence" | cut -c1-170 | tee -a "$R/times.txt"; save; }
for rep in 1 2; do
MOA_WGSL_RULES_TABLE=0 run up-baked-$rep $P/l1b-upstream.toml $L 4 4128
MOA_WGSL_RULES_TABLE=1 run up-table-$rep $P/l1b-upstream.toml $L 4 4128
MOA_WGSL_RULES_TABLE=1 run distinct-table-$rep $Q/l1b-half-distinct.toml $L 4 4128
MOA_WGSL_RULES_TABLE=0 run half1-baked-$rep $P/l1b-half-1rule.toml $L 4 4128
done
)
eng() { local tag=$1; shift; env "$@" timeout 150 /tmp/wpe --like llama-3.2-1b --rows 4 --prompt 4096 --new 32 --profile 5 --parity 0 --plan dense \
  --plan $P/l1b-half-1rule.toml --plan $Q/l1b-half-distinct.toml --plan $P/l1b-upstream.toml > "$R/$tag.txt" 2>&1
  el "$tag rc=$?"; grep -E "^==|^ *(attention|step):" "$R/$tag.txt" | sed 's/: wgpu NVIDIA.*//' | cut -c1-150 | tee -a "$R/times.txt"; save; }
eng 1b-table
eng 1b-baked MOA_WGSL_RULES_TABLE=0
S=plans/smollm2-135m-moa-50.toml
dec() { local name=$1 prof=$2 par=$3; shift 3
  env "$@" timeout 40 /tmp/wpe --like smollm2-135m --rows 16 --new 256 --profile $prof --plan $S --prompt 4096 --parity $par > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -m1 -E '^ *attention: ' $R/$name.txt | grep -o -E '[0-9.]+ us/dispatch') $(grep -o -E 'max .logit err. [^,]*, argmax equal [0-9/]+' $R/$name.txt)"; save; }
dec T1 5 24; dec B1 5 24 MOA_WGSL_RULES_TABLE=0
dec B2 1 0 MOA_WGSL_RULES_TABLE=0; dec T2 1 0; dec T3 1 0; dec B3 1 0 MOA_WGSL_RULES_TABLE=0
for n in T1 B1; do echo "== $n"; grep -E "^ *(qkv|attention|out|gate_up|down|head|argmax|probe|step):" "$R/$n.txt" | head -12; done > "$R/profile.txt" 2>&1
cat "$R/profile.txt"; save
