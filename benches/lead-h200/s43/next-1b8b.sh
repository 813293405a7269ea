#!/bin/bash
# Prepared in session 43 for the next session (not run): call 5 left the 1B wall figures unread (the table's run was
# the second plan of its process) and cut the 8B runs by their bounds. Each plan in its own process here, T (rules
# table, the default) and B (MOA_WGSL_RULES_TABLE=0) alternating, 256 decode steps, no profile rows in the timed runs.
# PREDICTED: 1B upstream T above B by ~8-10% tok/s (device step 1 595 against 1 771 us in call 5) and above dense;
# 8B upstream T above B by ~1-2% (~6 us a layer x 32 of an ~11.9 ms step).
# Carry .dev-lead40 (wpe.xz of main, gl/, env.sh); run bash .dev-lead40/s43-next-1b8b.sh (copy it there first).
. "$(dirname "$0")/env.sh" s43n wpe
unset MOA_WGPU_COOP_ATTN
P1=$U/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json
P8=$U/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
one() { local tag=$1 like=$2 plan=$3 new=$4 bound=$5; shift 5
  env "$@" timeout $bound /tmp/wpe --like $like --rows 4 --prompt 4096 --new $new --profile 0 --parity 0 --plan $plan > "$R/$tag.txt" 2>&1
  el "$tag rc=$? $(grep -o -E 'decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s' $R/$tag.txt | tail -1)"; save; }
one 1b-T1 llama-3.2-1b $P1 256 90; one 1b-B1 llama-3.2-1b $P1 256 90 MOA_WGSL_RULES_TABLE=0
one 1b-B2 llama-3.2-1b $P1 256 90 MOA_WGSL_RULES_TABLE=0; one 1b-T2 llama-3.2-1b $P1 256 90
one 1b-D1 llama-3.2-1b dense 256 90
one 8b-T1 llama-3-8b $P8 64 200; one 8b-B1 llama-3-8b $P8 64 200 MOA_WGSL_RULES_TABLE=0
