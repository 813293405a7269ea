#!/bin/bash
# Device call 2 (session 13, branch s13-decode): unmasked tiles (`u`) against the default
# 4x3ems on Llama-3-8B (Vicuna-7B's MHA segments never mask), checked and timed.
#  1. Checks side by side: cuda_check of the fixtures (f16, bf16) and of Llama-3-8B's
#     first 8 layers (bf16) with 4x3eums.
#  2. Timing alone, in the model's position (producer + programmatic launch): every layer,
#     B = 16 and 4, 4k and 16k, 4x3ems / 4x3eums / 4x3ems again (A/B/A); the no-epilogue
#     probes x with and without u on 8 layers (waves:10:pairs lists).
# Carry .dev-s13-decode (pack.sh, call 2's cubins added). On the device: bash .dev-s13-decode/call2.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
s=$(date +%s)
END=${END:-45}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r2; mkdir -p $R /tmp/cubins /tmp/bin
tar -xJf $C/cubins.tar.xz -C /tmp/cubins
for b in attention_bench cuda_check; do gunzip -c $C/$b.gz > /tmp/bin/$b && chmod +x /tmp/bin/$b; done
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tgz -C $R .; }
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=/tmp/bin
ck() { local out=$1; shift; ( timeout $(cap 20) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
ck check-fixtures-4x3eums $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --dtypes f16,bf16 --variant 4x3eums
ck check-llama8-bf16-4x3eums $B/cuda_check --upstream $L --layers 8 --kv-heads 8 --dtypes bf16 --variant 4x3eums
wait
for f in $R/check-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|rc=" $f | tail -3; done
pack checks
T="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7 --producer --launch pdl"
timeout $(cap 16) $B/attention_bench --model llama-3-8b:8:$L $T --variants 4x3ems,4x3eums \
  --json $R/bench-llama.jsonl > $R/bench-llama.md 2> $R/bench-llama.err
echo "bench rc=$?"; pack bench
timeout $(cap 5) $B/attention_bench --model llama-3-8b:8:$L $T --variants 4x3emsx,4x3eumsx \
  --chunks waves:10:pairs --layers 0,8,12,19,25,27,28,29 --json $R/probe.jsonl > $R/probe.md 2> $R/probe.err
echo "probe rc=$?"
timeout $(cap 8) $B/attention_bench --model llama-3-8b:8:$L $T --variants 4x3ems \
  --json $R/bench-llama-again.jsonl > $R/bench-llama-again.md 2> $R/bench-llama-again.err
echo "again rc=$?"
python3 $C/tables.py $R/bench-llama.jsonl $C/call1-peers.jsonl $R/probe.jsonl > $R/summary.md 2>&1; head -12 $R/summary.md
pack done
