#!/bin/bash
# Session 43, lead call 5: the 1B and 8B shapes end to end with the rules table (T, the engine's default now) against
# baked rules (B, MOA_WGSL_RULES_TABLE=0), upstream plans, 4 rows x 4096, the engine's defaults otherwise (the
# matrix-unit prefill attention on: MOA_WGPU_COOP_ATTN unset). Session 39 (H200): 1B dense 1 829 / upstream 1 790
# tok/s, 8B dense 336 / upstream 333: the plans read 0.66 / 0.62 of dense's KV and were no faster.
# PREDICTED: 1B upstream T above dense (attention 17 against 20 us a layer, call 3), B at session 39's; 8B upstream
# T gains its ~5 us a layer x 32 layers (~1.5% of an 11.9 ms step) over B.
. "$(dirname "$0")/env.sh" s43c5 wpe
unset MOA_WGPU_COOP_ATTN
summ() { grep -E "^==|parity|tok/s|^ *(attention|step):" "$1" | sed 's/: wgpu NVIDIA.*//' | cut -c1-220 | tee -a "$R/times.txt"; }
env timeout 120 /tmp/wpe --like llama-3.2-1b --rows 4 --prompt 4096 --new 64 --profile 5 --parity 24 \
  --plan dense --plan $U/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json > "$R/l1b-T.txt" 2>&1; el "1b T rc=$?"; summ "$R/l1b-T.txt"; save
env MOA_WGSL_RULES_TABLE=0 timeout 90 /tmp/wpe --like llama-3.2-1b --rows 4 --prompt 4096 --new 64 --profile 5 --parity 0 \
  --plan $U/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json > "$R/l1b-B.txt" 2>&1; el "1b B rc=$?"; summ "$R/l1b-B.txt"; save
env timeout 170 /tmp/wpe --like llama-3-8b --rows 4 --prompt 4096 --new 32 --profile 3 --parity 0 \
  --plan dense --plan $U/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json > "$R/l8b-T.txt" 2>&1; el "8b T rc=$?"; summ "$R/l8b-T.txt"; save
env MOA_WGSL_RULES_TABLE=0 timeout 120 /tmp/wpe --like llama-3-8b --rows 4 --prompt 4096 --new 32 --profile 3 --parity 0 \
  --plan $U/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json > "$R/l8b-B.txt" 2>&1; el "8b B rc=$?"; summ "$R/l8b-B.txt"; save
