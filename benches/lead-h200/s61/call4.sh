#!/bin/bash
# Session 61, lead call 4 (call 3 trimmed to fit the session's last device time; call 3 never got a machine): (1) a long row in parts at the logit level on the H100 through Vulkan
# (matrix-unit prefill attention with q_start): wgpu_products_engine's parity check, one SmolLM2-shape
# row of 3000 tokens + 2 decode steps against the CPU reference, moa-50, at the adapter's binding
# limit and planned for 2 MiB (a pass holds 910 tokens: the row in 4 parts of 896). PREDICTED: the
# same max |logit err| within 1e-3 of each other, argmax 3/3. (2) session 59's call 1 (not run then:
# no device lent) without its 8B part: quantized decode products at many rows and matvec_q's UNROLL.
SESSION=s61; . "$(dirname "$0")/env.sh" call4 moa:c/moa.xz rg:c/rg.xz wpe:c/wpe.xz
cd /work/main
for mb in "" 2097152; do
  timeout 150 /tmp/wpe --like smollm2-135m --rows 1 --prompt 16 --new 2 --plan plans/smollm2-135m-moa-50.toml --parity 3000 ${mb:+--max-binding $mb} > "$R/parity-${mb:-adapter}.txt" 2>&1
  el "parity max_binding=${mb:-adapter} rc=$? $(grep -E '^parity' "$R/parity-${mb:-adapter}.txt")"; save
done
/tmp/rg /tmp/1b.gguf --like llama-3.2-1b --mix q4_k_m > "$R/rg1.txt" 2>&1
el "files $(stat -c '%s %n' /tmp/*.gguf | tr '\n' ' ')"
printf 'hello world %.0s' $(seq 1 320) > /tmp/p4k.txt
printf 'hello world %.0s' $(seq 1 170) > /tmp/p2k.txt
# run NAME SETTING MODEL ROWS PLAN PROMPT NEW; SETTING f16 or gGuU
run() { local name=$1 set=$2 model=$3 rows=$4 plan=$5 prompt=$6 new=$7 q=1 g=4 u=1
  case $set in f16) q=0;; auto) q=auto;; *) g=${set#g}; g=${g%u*}; u=${set#*u};; esac
  local args="--model $model $plan $(for i in $(seq $rows); do printf -- "--prompt-file $prompt "; done)"
  MOA_WGPU_QUANT_WEIGHTS=$q MOA_WGPU_QUANT_GEMV_ROWS=$g MOA_WGPU_QUANT_GEMV_UNROLL=$u timeout 100 /tmp/moa generate --raw --max-new-tokens $new --ignore-eos --print-ids $args > "$R/$name.out" 2> "$R/$name.err"
  local rc=$?
  el "$name rc=$rc $(grep -o 'loaded in.*' "$R/$name.err") | $(grep -E '^prefill' "$R/$name.err") | ids $(md5sum < "$R/$name.out" | cut -c1-8)"
  [ $rc = 0 ] || tail -3 "$R/$name.err" >> "$R/times.txt"; gzip -9 "$R/$name.err"; save; }
for s in f16 g4u1 g4u2; do run 1b-1-$s $s /tmp/1b.gguf 1 "" /tmp/p2k.txt 256; done
for s in f16 g4u1; do run 1b-16-$s $s /tmp/1b.gguf 16 "" /tmp/p2k.txt 128; done
el done; save
