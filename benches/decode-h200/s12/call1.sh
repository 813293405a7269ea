#!/bin/bash
# Device call 1 (session 12, branch s12-decode): where a launch's fixed cost goes and two
# cuts of it, every layer of both upstream plans, in the model's position (after the
# cache write's shape, programmatic launch; µs = pair - producer alone), dense SDPA after
# the same writes and a device copy of each B = 4 layer's bytes in the same call.
#  1. Checks side by side (nothing timed): cuda_check of the fixtures (f32, f16, bf16) with
#     --variant 4x3emst, 4x3ems, 4x3emt, 4x3efmst and 4x3efmstb; both upstream plans in
#     bf16 with 4x3emst, Llama-3-8B also with 4x3efmstb (f16
#     in the call that checks the chosen default); compute-sanitizer memcheck and racecheck
#     on fixture-gqa bf16 with 4x3efmstb.
#  2. Timing alone: Llama-3-8B B = 16 and 4, 4k and 16k, variants 4x3em (the default),
#     4x3ems (lean epilogue), 4x3emt (ticket merge), 4x3emst (both), 4x3efmst (and the
#     full prologue: every stage's tile issued before the first wait), 4x3efmstb (and
#     merge batches of 32 chunks, not 16), each under the
#     default policy (waves:10:packed) and waves:10:pairs (s11's, plain lists where
#     packed takes clusters); the probes 4x3ez (stream only), 4x3emx (stream + math),
#     4x3emq (Q a constant), 4x3emy (no merge) under waves:10:pairs (plain lists) on layers 0, 8,
#     12, 19, 25, 27, 28, 29 (bytes from small to large); Vicuna-7B B = 16 and 4, 4k and
#     16k, 4x3em, 4x3emst, 4x3efmstb (for MHA the same merge batch as 4x3efmst: 32).
#  3. decode_peers.py --producer: dense SDPA; --same-bytes (Llama B = 4 lines): SDPA, a
#     device copy and a sum over each layer's byte count.
# Carry .dev-s12-decode: attention_bench.gz, cuda_check.gz, cubins.tar.xz, spans.json,
# decode_peers.py, tables.py, this script. On the device: bash .dev-s12-decode/call1.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* 2>/dev/null | head -1); [ -n "$cb" ] && ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
s=$(date +%s)
END=${END:-190}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r1; mkdir -p $R /tmp/cubins /tmp/bin
tar -xJf $C/cubins.tar.xz -C /tmp/cubins
for b in attention_bench cuda_check; do gunzip -c $C/$b.gz > /tmp/bin/$b && chmod +x /tmp/bin/$b; done
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tgz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=/tmp/bin
ck() { local out=$1; shift; ( timeout $(cap 50) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
for v in 4x3emst 4x3ems 4x3emt 4x3efmst 4x3efmstb; do ck check-fixtures-$v $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant $v; done
ck check-llama-bf16 $B/cuda_check --upstream $L --kv-heads 8 --dtypes bf16 --variant 4x3emst
ck check-llama-bf16-f $B/cuda_check --upstream $L --kv-heads 8 --dtypes bf16 --variant 4x3efmstb
ck check-vicuna-bf16 $B/cuda_check --upstream $V --kv-heads 32 --dtypes bf16 --variant 4x3emst
( for tool in memcheck racecheck; do echo "== $tool"; timeout $(cap 45) compute-sanitizer --tool $tool $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant 4x3efmstb 2>&1 | tail -6; done > $R/sanitizer.txt 2>&1 ) &
wait
for f in $R/check-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|rc=" $f | tail -4; done
grep -E "SUMMARY|==" $R/sanitizer.txt
pack checks
T="--no-dense --replays 7 --producer --launch pdl"
timeout $(cap 60) $B/attention_bench --model llama-3-8b:8:$L --batch 16,4 --prompt 4096,16384 $T \
  --variants 4x3em,4x3ems,4x3emt,4x3emst,4x3efmst,4x3efmstb --chunks auto,waves:10:pairs --json $R/bench-llama.jsonl > $R/bench-llama.md 2> $R/bench-llama.err
echo "bench llama rc=$?"; tail -2 $R/bench-llama.err; pack bench-llama
timeout $(cap 20) $B/attention_bench --model llama-3-8b:8:$L --batch 16,4 --prompt 4096,16384 $T \
  --variants 4x3ez,4x3emx,4x3emq,4x3emy --chunks waves:10:pairs --layers 0,8,12,19,25,27,28,29 --json $R/probe.jsonl > $R/probe.md 2> $R/probe.err
echo "probe rc=$?"; tail -2 $R/probe.err; pack probe
timeout $(cap 25) $B/attention_bench --model vicuna-7b:32:$V --batch 16,4 --prompt 4096,16384 $T \
  --variants 4x3em,4x3emst,4x3efmstb --json $R/bench-vicuna.jsonl > $R/bench-vicuna.md 2> $R/bench-vicuna.err
echo "bench vicuna rc=$?"; tail -2 $R/bench-vicuna.err; pack bench-vicuna
timeout $(cap 30) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --json $R/peers.jsonl --same-bytes $R/bench-llama.jsonl --same-bytes-batch 4 > $R/peers.md 2> $R/peers.err
echo "peers rc=$?"; tail -2 $R/peers.err; pack peers
cat $R/bench-llama.jsonl $R/bench-vicuna.jsonl > $R/bench.jsonl
python3 $C/tables.py $R/bench.jsonl $R/peers.jsonl $R/probe.jsonl > $R/summary.md 2>&1; head -70 $R/summary.md
pack done
cat $R/log.txt
