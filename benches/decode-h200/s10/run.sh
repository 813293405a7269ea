#!/bin/bash
# Device call 14 (session 10, branch s10-decode): the decode kernel's fixed cost at B = 4.
#  1. Checks side by side (correctness only, nothing timed): cuda_check of the fixtures
#     (f32, f16, bf16) and of both upstream plans (bf16, f16) with this branch's default
#     kernel (4x3em: early loads + fast merge; every decode case also after a writer
#     kernel launched programmatically, Q and the current slots NaN until written);
#     compute-sanitizer memcheck and racecheck on fixture-gqa bf16; the CUDA engine's GPU
#     tests (decode attention a programmatic launch after moa_rope_kv).
#  2. Timing alone on the GPU, where a model runs attention (after a kernel of
#     moa_rope_kv's shape, programmatic launch; µs = pair - producer alone), every layer of
#     both plans, B = 16 and 4, 4k and 16k: kernels 4x3 (session 9's), 4x3m (fast merge),
#     4x3em (+ early loads); the probe 4x3ez (streams the tiles, no math, no merge: the
#     floor of the work list's traffic); Vicuna with waves:10:pairs beside its default.
#  3. decode_peers.py --producer: dense SDPA alone and after the same writes.
# Carry .dev-s10-decode: attention_bench, cuda_check (gz), cuda_engine.gz, cubins.tar.xz,
# spans.json, decode_peers.py, variants.py, this script. On the device:
#   bash .dev-s10-decode/run.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* 2>/dev/null | head -1); [ -n "$cb" ] && ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
s=$(date +%s)
END=${END:-175}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r14; mkdir -p $R /tmp/cubins /tmp/bin
tar -xJf $C/cubins.tar.xz -C /tmp/cubins
for b in attention_bench cuda_check cuda_engine; do gunzip -c $C/$b.gz > /tmp/bin/$b && chmod +x /tmp/bin/$b; done
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tgz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=/tmp/bin
# 1: checks and tests side by side (each its own process; nothing timed).
( timeout 40 $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml > $R/check-fixtures.txt 2>&1; echo "rc=$?" >> $R/check-fixtures.txt ) &
( timeout 60 $B/cuda_check --upstream $L --kv-heads 8 --dtypes bf16,f16 > $R/check-llama.txt 2>&1; echo "rc=$?" >> $R/check-llama.txt ) &
( timeout 60 $B/cuda_check --upstream $V --kv-heads 32 --dtypes bf16,f16 > $R/check-vicuna.txt 2>&1; echo "rc=$?" >> $R/check-vicuna.txt ) &
( for tool in memcheck racecheck; do echo "== $tool"; timeout 50 compute-sanitizer --tool $tool $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 2>&1 | tail -6; done > $R/sanitizer.txt 2>&1 ) &
( timeout 60 $B/cuda_engine --test-threads 1 --skip real_smollm2 > $R/engine-tests.txt 2>&1; echo "rc=$?" >> $R/engine-tests.txt ) &
wait
for f in check-fixtures check-llama check-vicuna; do echo "== $f"; grep -E "pass|FAIL|fail|error|rc=" $R/$f.txt | tail -8; done
grep -E "SUMMARY|==" $R/sanitizer.txt; grep -E "test result|rc=|FAILED|panicked" $R/engine-tests.txt | tail -8
pack checks
# 2: timing, alone on the GPU from here.
M="--model llama-3-8b:8:$L --model vicuna-7b:32:$V"
T="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7 --producer --launch pdl"
timeout $(cap 60) $B/attention_bench $M $T --variants 4x3,4x3m,4x3em \
  --json $R/bench.jsonl > $R/bench.md 2> $R/bench.err; echo "bench rc=$?"; tail -3 $R/bench.err
pack bench
timeout $(cap 25) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err; echo "peers rc=$?"; tail -2 $R/peers.err
pack peers
python3 $C/variants.py $R/bench.jsonl $R/peers.jsonl > $R/summary.md 2>&1; cat $R/summary.md
timeout $(cap 20) $B/attention_bench $M $T --variants 4x3ez --json $R/probe.jsonl > $R/probe.md 2> $R/probe.err; echo "probe rc=$?"
pack probe
timeout $(cap 15) $B/attention_bench --model vicuna-7b:32:$V $T --variants 4x3em --chunks waves:10:pairs \
  --json $R/policy.jsonl > $R/policy.md 2> $R/policy.err; echo "policy rc=$?"
python3 $C/variants.py $R/bench.jsonl $R/peers.jsonl $R/probe.jsonl $R/policy.jsonl > $R/summary.md 2>&1; tail -40 $R/summary.md
pack done
cat $R/log.txt
