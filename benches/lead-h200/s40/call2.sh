#!/bin/bash
# Run in session 41 (results: call2/). Carry as call1.sh says (only wpe.xz and gl/ are needed); bash .dev-lead40/call2.sh.
# Session 40, lead call 2 (after call 1, same warm machine): decode chunk sweeps of dense and the upstream plans at
# 4 rows x 4096 on the 1B and 8B shapes (a new request per chunk length; 0 = the work-list model's choice), and
# the Llama-3.2-3B shape with its upstream plan.
# PREDICTED: with the span switch the plans' attention is below dense's at the model's chunk (0); if not, some
# fixed chunk is, and the work-list model (fitted on SmolLM2 at 16 rows) picks chunks too long for few rows.
# 3B: loads, generates, step 3.2-3.8 ms (6.4 GB of f16 weights at ~2.5 TB/s + attention).
. "$(dirname "$0")/env.sh" c2 wpe
summ() { grep -E "^==|chunk .* decode step|^ *(attention|step):|Error|error|panicked" "$1" | cut -c1-160 | tee -a "$R/times.txt"; }
timeout 120 /tmp/wpe --like llama-3.2-1b --rows 4 --prompt 4096 --new 8 --profile 5 --parity 0 --chunks 0,64,128,256,512,1024,0 \
  --plan dense --plan $U/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json > "$R/l1b.txt" 2>&1; el "1b rc=$?"; summ "$R/l1b.txt"; save
timeout 90 /tmp/wpe --like llama-3.2-3b --rows 4 --prompt 4096 --new 32 --profile 3 --parity 0 \
  --plan dense --plan $U/meta-llama--Llama-3.2-3B-Instruct/moa_alpha_beta.json > "$R/l3b.txt" 2>&1; el "3b rc=$?"; grep -E "^==|tok/s|ms/step|^ *(qkv|attention|out|gate_up|down|head|step):" "$R/l3b.txt" | cut -c1-200 | tee -a "$R/times.txt"; save
timeout 220 /tmp/wpe --like llama-3-8b --rows 4 --prompt 4096 --new 8 --profile 3 --parity 0 --chunks 0,64,128,256,512,1024 \
  --plan dense --plan $U/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json > "$R/l8b.txt" 2>&1; el "8b rc=$?"; summ "$R/l8b.txt"; save
