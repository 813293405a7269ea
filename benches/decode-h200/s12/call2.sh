#!/bin/bash
# Device call 2 (session 12, branch s12-decode): the new default decode kernel (chosen
# from call 1) checked where call 1 did not, and timed once more against the old one.
#  1. Checks side by side: cuda_check of the fixtures (f32, f16, bf16) and of both
#     upstream plans in bf16 and f16 with the default kernel; compute-sanitizer memcheck
#     and racecheck on fixture-gqa bf16; the CUDA engine's GPU tests (its decode runs the
#     default kernel, a programmatic launch after moa_rope_kv).
#  2. Timing alone, in the model's position: Llama-3-8B and Vicuna-7B, B = 16 and 4, 4k
#     and 16k, the old default 4x3em against the new one ($NEW; Llama also 4x3ems, the
#     new one without wide merge batches), and dense SDPA.
# Carry .dev-s12-decode (call 1's files; attention_bench.gz, cuda_check.gz, cuda_engine.gz
# and cubins.tar.xz replaced). On the device: bash .dev-s12-decode/call2.sh
C=$(cd "$(dirname "$0")" && pwd)
NEW=${NEW:-4x3emsb}
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* 2>/dev/null | head -1); [ -n "$cb" ] && ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
s=$(date +%s)
END=${END:-110}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r2; mkdir -p $R /tmp/cubins /tmp/bin
tar -xJf $C/cubins.tar.xz -C /tmp/cubins
for b in attention_bench cuda_check cuda_engine; do gunzip -c $C/$b.gz > /tmp/bin/$b && chmod +x /tmp/bin/$b; done
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tgz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=/tmp/bin
ck() { local out=$1; shift; ( timeout $(cap 50) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
ck check-fixtures $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml
ck check-llama-bf16 $B/cuda_check --upstream $L --kv-heads 8 --dtypes bf16
ck check-llama-f16 $B/cuda_check --upstream $L --kv-heads 8 --dtypes f16
ck check-vicuna-bf16 $B/cuda_check --upstream $V --kv-heads 32 --dtypes bf16
ck check-vicuna-f16 $B/cuda_check --upstream $V --kv-heads 32 --dtypes f16
( for tool in memcheck racecheck; do echo "== $tool"; timeout $(cap 45) compute-sanitizer --tool $tool $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 2>&1 | tail -6; done > $R/sanitizer.txt 2>&1 ) &
ck engine-tests $B/cuda_engine --test-threads 1 --skip real_smollm2
wait
for f in $R/check-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|rc=" $f | tail -4; done
grep -E "SUMMARY|==" $R/sanitizer.txt; grep -E "test result|rc=|FAILED|panicked" $R/engine-tests.txt | tail -6
pack checks
T="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7 --producer --launch pdl"
timeout $(cap 25) $B/attention_bench --model llama-3-8b:8:$L $T --variants 4x3em,4x3ems,$NEW \
  --json $R/bench-llama.jsonl > $R/bench-llama.md 2> $R/bench-llama.err
echo "bench llama rc=$?"; tail -2 $R/bench-llama.err; pack bench-llama
timeout $(cap 20) $B/attention_bench --model vicuna-7b:32:$V $T --variants 4x3em,$NEW \
  --json $R/bench-vicuna.jsonl > $R/bench-vicuna.md 2> $R/bench-vicuna.err
echo "bench vicuna rc=$?"; tail -2 $R/bench-vicuna.err; pack bench-vicuna
cat $R/bench-llama.jsonl $R/bench-vicuna.jsonl > $R/bench.jsonl
timeout $(cap 25) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err
echo "peers rc=$?"; tail -2 $R/peers.err
python3 $C/tables.py $R/bench.jsonl $R/peers.jsonl /dev/null > $R/summary.md 2>&1; head -22 $R/summary.md
pack done
