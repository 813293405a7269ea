#!/bin/bash
# Session 43, lead call 4. (1) The scalar decode (adapters without a fixed subgroup size; here MOA_WGSL_SG_DECODE=0)
# now takes the rules table too: SmolLM2 moa-50 16 x 4096 table (T) against baked (B, MOA_WGSL_RULES_TABLE=0).
# PREDICTED: T above B by several % (the scalar decode's per-layer code differs as the flat one's did).
# (2) What is left of the flat decode's time with the table: the SmolLM2 moa-50 layers alone and back to back
# (wgpu_decode_bench plan, 16 rows at 4096, random caches), and the engine's loads-only twin (MOA_WGSL_SG_DECODE=read).
# Carry .dev-lead40 (wdb.xz, wpe.xz built from this commit, gl/, env.sh); run bash .dev-lead40/s43-call4.sh.
. "$(dirname "$0")/env.sh" s43c4 wdb wpe
S=plans/smollm2-135m-moa-50.toml
dec() { local name=$1 prof=$2 par=$3; shift 3
  env "$@" timeout 40 /tmp/wpe --like smollm2-135m --rows 16 --new 256 --profile $prof --plan $S --prompt 4096 --parity $par > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -m1 -E '^ *attention: ' $R/$name.txt | grep -o -E '[0-9.]+ us/dispatch') $(grep -o -E 'max .logit err. [^,]*, argmax equal [0-9/]+' $R/$name.txt)"; save; }
dec sT1 5 24 MOA_WGSL_SG_DECODE=0; dec sB1 5 24 MOA_WGSL_SG_DECODE=0 MOA_WGSL_RULES_TABLE=0
dec sB2 1 0 MOA_WGSL_SG_DECODE=0 MOA_WGSL_RULES_TABLE=0; dec sT2 1 0 MOA_WGSL_SG_DECODE=0
dec read 5 0 MOA_WGSL_SG_DECODE=read
dec fT 5 0
(
export MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late MOA_WGSL_SG_FLAT_WORDS=1 MOA_WGSL_SG_FLAT_CMAX=1 MOA_WGSL_FUSED_MERGE=1
export MOA_COPY_MIB=256 MOA_WGSL_KV_RANDOM=1 MOA_WGSL_RULES_TABLE=1
L=$(seq -s, 0 29)
MOA_WGSL_SEQUENCE=1 timeout 120 /tmp/wdb plan $S $L 16 4096 > "$R/wdb-smol.txt" 2>&1; el "wdb-smol rc=$?"
grep -vE '^\{' "$R/wdb-smol.txt" | grep -E "layer|sequence|copy" | cut -c1-170 | tee -a "$R/times.txt"; save
)
for n in sT1 sB1 read fT; do echo "== $n"; grep -E "^ *(qkv|attention|out|gate_up|down|head|argmax|probe|step):" "$R/$n.txt" | head -12; done > "$R/profile.txt" 2>&1
cat "$R/profile.txt"; save
