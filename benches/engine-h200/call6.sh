#!/bin/bash
# Call 6 (run by the lead at the end of session 6, one call, no GGUF: step 2 runs on the
# SmolLM2-shaped random model): what calls 4 and 5 left. Order: the HF ratio first
# (the target never measured), then the checks that gate the new defaults, then SmolLM2.
#  1. HF static cache + torch.compile at its largest Llama-3-8B batch, now that `--batch
#     max` counts transformers' GQA repeat_kv transient (calls 4: out of memory at 236 and
#     217 rows), beside moa's plan at its largest batch (call 4: 375 rows, 9358 tok/s).
#  2. The real SmolLM2 GGUF: greedy parity with the CPU reference over 3 ragged rows of
#     400/250/130 tokens (spans from 128, rings wrap), dense and the default plan, plus
#     the token-group prefill and the sampled prefill checks (`--parity`), with a longer cap
#     than call 5's 60 s; the fused decode norms (`--fuse`) in the same checks.
#  3. SmolLM2 16 x 4k decode with and without the fused norms, prefill in token groups.
# Carry: `.dev-s6-engine/a` with moa.gz, hf_decode.py and the first GGUF part (as call 4),
# then this script's rest needs the second part: run it as two calls like calls 4/5, or
# drop step 2's --model to check on the SmolLM2-shaped random model in one call.
D=$PWD/.dev-s6-engine/a
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
mkdir -p $OUT/r; R=$OUT/r
pack() { tar czf $OUT/results.tgz -C $OUT r; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* | head -1); ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
gunzip -c $D/moa.gz > /tmp/moa; chmod +x /tmp/moa; M=/tmp/moa
L8=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
P50=plans/smollm2-135m-moa-50.toml
el 8b
timeout 65 $M bench --like llama-3-8b --plan $L8 --no-dense --prompt 4096 --batch max --max-batch 1024 \
  --new 10 --prefill-rows 16 --json $R/bench.jsonl > $R/bench-8b.md 2>&1
el "8b rc=$?"; cat $R/bench-8b.md; pack
el hf8b
timeout 150 python3 $D/hf_decode.py --like llama-3-8b --prompt 4096 --batch max --prefill-rows 8 \
  --new 12 --json $R/hf.jsonl > $R/hf-8b.md 2> $R/hf-8b.err
el "hf8b rc=$?"; cat $R/hf-8b.md; grep -v -i warn $R/hf-8b.err | grep -v "^\s*$" | tail -4; pack
el checks
timeout 120 $M bench --plan $P50 --parity 32 --check-ops --fuse --checks-only --json $R/checks.jsonl > $R/checks.txt 2>&1
el "checks rc=$?"; grep -v " ok " $R/checks.txt | tail -20; grep norm_gemv $R/checks.txt; pack
el smollm2-fuse   # launches saved by the fused norms (a step is ~270 launches unfused)
timeout 40 $M bench --like smollm2-135m --plan $P50 --prompt 4096 --batch 16 --new 20 --prefill-sub 2048 \
  --json $R/bench.jsonl > $R/bench-smollm2.md 2>&1
timeout 40 $M bench --like smollm2-135m --plan $P50 --prompt 4096 --batch 16 --new 20 --prefill-sub 2048 --fuse \
  --json $R/bench.jsonl >> $R/bench-smollm2.md 2>&1
el "smollm2 rc=$?"; cat $R/bench-smollm2.md; pack
el done
