#!/bin/bash
# Device call 16 (session 11, branch s11-decode): whole segments packed into thread-block
# clusters (the merge in distributed shared memory wherever the waves list cuts every
# segment into at most 8 chunks and the clusters fit one wave), and what a plain read of
# the same bytes reaches at B = 4.
#  1. Checks side by side (nothing timed): cuda_check of the fixtures (f32, f16, bf16) and
#     of both upstream plans (bf16 and f16, one process each), every decode case also as
#     packed clusters of 4 and of 8 (the latter programmatic after a plain launch), the
#     Llama runtime lists by waves:10:packed; compute-sanitizer memcheck and racecheck on
#     fixture-gqa bf16; the CUDA engine's GPU tests.
#  2. Timing alone, where a model runs attention (after the cache write's shape,
#     programmatic launch; µs = pair - producer alone): Llama-3-8B B = 16 and 4, 4k and
#     16k, policies auto (waves:10:pairs), waves:10:packed, packed:4, packed:8; Vicuna-7B
#     B = 4 auto and waves:2:packed; the probes 4x3ez (stream only) and 4x3emy (no merge)
#     on Llama B = 4.
#  3. decode_peers.py --producer: dense SDPA; --same-bytes: SDPA dense, a copy and a sum
#     on each B = 4 layer's byte count.
# Carry .dev-s11-decode: attention_bench.gz, cuda_check.gz, cuda_engine.gz,
# cubins.tar.xz, spans.json, decode_peers.py, tables.py, this script. On the device:
#   bash .dev-s11-decode/run.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* 2>/dev/null | head -1); [ -n "$cb" ] && ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
s=$(date +%s)
END=${END:-130}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r16; mkdir -p $R /tmp/cubins /tmp/bin
tar -xJf $C/cubins.tar.xz -C /tmp/cubins
for b in attention_bench cuda_check cuda_engine; do gunzip -c $C/$b.gz > /tmp/bin/$b && chmod +x /tmp/bin/$b; done
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tgz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=/tmp/bin
ck() { local out=$1; shift; ( timeout $(cap 45) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
ck check-fixtures $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml
ck check-llama-bf16 $B/cuda_check --upstream $L --kv-heads 8 --dtypes bf16 --chunk-policy waves:10:packed
ck check-llama-f16 $B/cuda_check --upstream $L --kv-heads 8 --dtypes f16 --chunk-policy waves:10:packed
ck check-vicuna-bf16 $B/cuda_check --upstream $V --kv-heads 32 --dtypes bf16 --chunk-policy waves:2:packed
ck check-vicuna-f16 $B/cuda_check --upstream $V --kv-heads 32 --dtypes f16 --chunk-policy waves:2:packed
( for tool in memcheck racecheck; do echo "== $tool"; timeout $(cap 40) compute-sanitizer --tool $tool $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 2>&1 | tail -6; done > $R/sanitizer.txt 2>&1 ) &
ck engine-tests $B/cuda_engine --test-threads 1 --skip real_smollm2
wait
for f in $R/check-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|rc=" $f | tail -6; done
grep -E "SUMMARY|==" $R/sanitizer.txt; grep -E "test result|rc=|FAILED|panicked" $R/engine-tests.txt | tail -6
pack checks
T="--no-dense --replays 7 --producer --launch pdl"
timeout $(cap 30) $B/attention_bench --model llama-3-8b:8:$L --batch 16,4 --prompt 4096,16384 $T \
  --chunks auto,waves:10:packed,packed:4,packed:8 --json $R/bench-llama.jsonl > $R/bench-llama.md 2> $R/bench-llama.err
echo "bench llama rc=$?"; tail -3 $R/bench-llama.err; pack bench-llama
cp $R/bench-llama.jsonl $R/bench.jsonl
timeout $(cap 30) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --json $R/peers.jsonl --same-bytes $R/bench.jsonl --same-bytes-batch 4 > $R/peers.md 2> $R/peers.err
echo "peers rc=$?"; tail -3 $R/peers.err; pack peers
timeout $(cap 12) $B/attention_bench --model vicuna-7b:32:$V --batch 4 --prompt 4096,16384 $T \
  --chunks auto,waves:2:packed --json $R/bench-vicuna.jsonl > $R/bench-vicuna.md 2> $R/bench-vicuna.err
echo "bench vicuna rc=$?"; tail -2 $R/bench-vicuna.err; pack bench-vicuna
timeout $(cap 12) $B/attention_bench --model llama-3-8b:8:$L --batch 4 --prompt 4096,16384 $T \
  --variants 4x3ez,4x3emy --json $R/probe.jsonl > $R/probe.md 2> $R/probe.err
echo "probe rc=$?"; pack probe
cat $R/bench-llama.jsonl $R/bench-vicuna.jsonl > $R/bench.jsonl
python3 $C/tables.py $R/bench.jsonl $R/peers.jsonl $R/probe.jsonl > $R/summary.md 2>&1; head -60 $R/summary.md
pack done
cat $R/log.txt
