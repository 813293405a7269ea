#!/bin/bash
# Session 61, lead call 2: a row longer than one prefill pass, held in parts (DESIGN §7), on a GPU
# through Vulkan: the matrix-unit prefill attention with q_start (prefill_coop*.wgsl.j2), which
# lavapipe cannot run. (A) the engine tests at a 24 KiB planning limit (model_gpu: a row in parts
# against one unlimited pass and the CPU reference; the row-group test); (B) moa generate on random
# SmolLM2-shape Q4_0 files stating a 16k context: --dense, a 12k-token prompt, MOA_WGPU_MAX_BINDING_KIB
# 16384 (a pass holds 7 281 tokens: the row in 2 parts) against the adapter's limit; moa-50, a 6k
# prompt at 4096 KiB (3+ parts) against the adapter's. Same ids expected; prefill tok/s compared.
SESSION=s61; . "$(dirname "$0")/env.sh" call2 moa:c/moa.xz rg:c/rg.xz model_gpu:c/model_gpu.xz
cd /work/main
timeout 240 /tmp/model_gpu a_row_longer_than_one_pass_runs_in_parts prefill_over_the_binding_limit --nocapture > "$R/model_gpu.txt" 2>&1
el "model_gpu rc=$? $(grep -E '^test result' $R/model_gpu.txt)"; grep -E "^test |adapter:|panicked" "$R/model_gpu.txt" | head -8 | tee -a "$R/times.txt"; save
/tmp/rg /tmp/sm.gguf --like smollm2-135m --mix q4_0 --context 16384 > "$R/rgs.txt" 2>&1
python3 - <<'PY'
import random
random.seed(3)
w=['the','cat','sat','on','a','mat','and','then','went','home','while','dog','ran','far','away']
open('/tmp/p12k.txt','w').write(' '.join(random.choice(w) for _ in range(2850)))
open('/tmp/p6k.txt','w').write(' '.join(random.choice(w) for _ in range(1420)))
PY
run() { local name=$1 kib=$2; shift 2
  MOA_WGPU_MAX_BINDING_KIB=$kib timeout 120 /tmp/moa generate --model /tmp/sm.gguf --raw --max-new-tokens 64 --ignore-eos --print-ids "$@" > "$R/$name.out" 2> "$R/$name.err"
  el "$name rc=$? $(grep -o 'loaded in.*' "$R/$name.err" | cut -c1-80) | $(grep -E '^prefill' "$R/$name.err") | ids $(md5sum < "$R/$name.out" | cut -c1-8)"
  grep -o 'prefill attention: [^;]*' "$R/$name.err" | head -1 | cut -c1-200 >> "$R/times.txt"; save; }
for i in 1 2; do
  run dense12k-adapter-$i "" --dense --prompt-file /tmp/p12k.txt
  run dense12k-16m-$i 16384 --dense --prompt-file /tmp/p12k.txt
done
run moa6k-adapter "" --plan plans/smollm2-135m-moa-50.toml --prompt-file /tmp/p6k.txt
run moa6k-4m 4096 --plan plans/smollm2-135m-moa-50.toml --prompt-file /tmp/p6k.txt
el done; save
