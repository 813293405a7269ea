#!/bin/bash
# Device call 5 (s6-engine), right after call 4 on the same warm machine: the real
# SmolLM2-135M-Instruct GGUF (second part carried here, first part left in /tmp by call 4)
# through the CUDA engine: greedy parity with the CPU reference (dense and the default
# plan, 3 ragged rows x 32 tokens), `moa generate --backend cuda` token ids (dense and the
# plan, compared with wgpu ids made on the CPU machine), compute-sanitizer memcheck on a
# short generate.
D=$PWD/.dev-s6-engine/b
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
mkdir -p $OUT/r; R=$OUT/r
pack() { tar czf $OUT/results.tgz -C $OUT r; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* | head -1); ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
[ -x /tmp/moa ] || { gunzip -c $D/moa.gz > /tmp/moa; chmod +x /tmp/moa; }
M=/tmp/moa
ls -la /tmp/gguf.a | tee $R/gguf.txt
G=/tmp/moa-cache/SmolLM2-135M-Instruct.Q4_1.gguf; mkdir -p /tmp/moa-cache
cat /tmp/gguf.a $D/gguf.b > $G; sha256sum $G | tee -a $R/gguf.txt
export MOA_CACHE=/tmp/moa-cache
P50=plans/smollm2-135m-moa-50.toml
el parity
timeout 60 $M bench --model $G --plan $P50 --parity 32 --checks-only --json $R/checks.jsonl > $R/parity.txt 2>&1
el "parity rc=$?"; cat $R/parity.txt; pack
Q="Tell me a short story about a cat."
el sanitizer
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
timeout 35 $CS --tool memcheck --leak-check full --error-exitcode 9 $M generate --backend cuda --model $G \
  --prompt "$Q" --max-new-tokens 8 --ignore-eos > $R/memcheck.txt 2>&1
el "memcheck rc=$?"; tail -6 $R/memcheck.txt; pack
el generate
for v in "dense --dense --f32" "plan --f32" "dense-bf16 --dense" "plan-bf16"; do
  set -- $v; n=$1; shift
  timeout 9 $M generate --backend cuda --model $G "$@" --prompt "$Q" --max-new-tokens 32 --ignore-eos --print-ids > $R/gen-$n.txt 2>&1
  el "gen $n rc=$?"; grep "generated" $R/gen-$n.txt
done; pack
el done
