#!/bin/bash
# Session 59, lead call 1: quantized decode products at many rows and matvec_q's UNROLL (binary: 0922b3ca +
# auto = on for GPU adapters with a quantized file). Random files made on the device (random_gguf): SmolLM2 shape Q4_0 and Llama-3.2-1B
# shape Q4_K_M. Settings: f16 copy (f16); quantized with matvec_q up to 4 rows, then matvec_sg's quantized form
# (g4u1, the default); matvec_q at every row count (g64u1); the same with UNROLL 2 (g64u2, g4u2); auto (unset: on here). Then the Llama-3-8B shape, Q4_K_M.
# PREDICTED: SmolLM2 16 rows g4u1 ~0.9x f16, g64 ~0.5x; 1B 16 rows g4u1 0.9-1.0x; UNROLL 2 +0-10% at 1 row.
SESSION=s59; . "$(dirname "$0")/env.sh" call1 moa:c/moa.xz rg:c/rg.xz
cd /work/main
/tmp/rg /tmp/sm.gguf --like smollm2-135m --mix q4_0 > "$R/rgs.txt" 2>&1
/tmp/rg /tmp/1b.gguf --like llama-3.2-1b --mix q4_k_m > "$R/rg1.txt" 2>&1
el "files $(stat -c '%s %n' /tmp/*.gguf | tr '\n' ' ')"
printf 'hello world %.0s' $(seq 1 320) > /tmp/p4k.txt
printf 'hello world %.0s' $(seq 1 170) > /tmp/p2k.txt
# run NAME SETTING MODEL ROWS PLAN PROMPT NEW; SETTING f16 or gGuU
run() { local name=$1 set=$2 model=$3 rows=$4 plan=$5 prompt=$6 new=$7 q=1 g=4 u=1
  case $set in f16) q=0;; auto) q=auto;; *) g=${set#g}; g=${g%u*}; u=${set#*u};; esac
  local args="--model $model $plan $(for i in $(seq $rows); do printf -- "--prompt-file $prompt "; done)"
  ( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.2; done ) > "$R/$name.mem" 2>/dev/null & m=$!
  MOA_WGPU_QUANT_WEIGHTS=$q MOA_WGPU_QUANT_GEMV_ROWS=$g MOA_WGPU_QUANT_GEMV_UNROLL=$u timeout 150 /tmp/moa generate --raw --max-new-tokens $new --ignore-eos --print-ids $args > "$R/$name.out" 2> "$R/$name.err"
  local rc=$?; kill $m 2>/dev/null; wait $m 2>/dev/null
  el "$name rc=$rc peak_mem_MiB=$(sort -n "$R/$name.mem" | tail -1) $(grep -o 'loaded in.*' "$R/$name.err") | $(grep -E '^prefill' "$R/$name.err") | ids $(md5sum < "$R/$name.out" | cut -c1-8)"
  [ $rc = 0 ] || tail -3 "$R/$name.err" >> "$R/times.txt"; gzip -9 "$R/$name.err"; save; }
smp="--plan plans/smollm2-135m-moa-50.toml"
for s in f16 g4u1; do run 1b-16-$s $s /tmp/1b.gguf 16 "" /tmp/p2k.txt 128; done
for s in f16 g4u1 g4u2; do run 1b-1-$s $s /tmp/1b.gguf 1 "" /tmp/p2k.txt 256; done
run 1b-16-g64u2 g64u2 /tmp/1b.gguf 16 "" /tmp/p2k.txt 128
for s in f16 g4u1 g64u2; do run sm16-$s $s /tmp/sm.gguf 16 "$smp" /tmp/p4k.txt 256; done
/tmp/rg /tmp/8b.gguf --like llama-3-8b --mix q4_k_m > "$R/rg8.txt" 2>&1
el "8b file $(stat -c %s /tmp/8b.gguf)"
for s in auto f16; do run 8b-1-$s $s /tmp/8b.gguf 1 "" /tmp/p2k.txt 128; done
el done; save
