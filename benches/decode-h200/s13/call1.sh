#!/bin/bash
# Device call 1 (session 13, branch s13-decode): refill when free (`r`) and arrival
# barriers (`a`) against the default 4x3ems, checked and timed in one call.
#  1. Checks side by side: cuda_check of the fixtures (f32, f16, bf16) and of both
#     upstream plans in bf16 and f16 with 4x3erms and with 4x3erams; compute-sanitizer
#     memcheck and racecheck on fixture-gqa bf16 with each.
#  2. Timing alone, in the model's position (producer + programmatic launch): Llama-3-8B
#     and Vicuna-7B, every layer, B = 16 and 4, 4k and 16k, 4x3ems / 4x3erms / 4x3erams,
#     Llama once more in the reverse order (the repeat); the probes z / x with and without
#     r and a on 8 Llama layers (waves:10:pairs lists); a chunk sweep on Llama B = 16's
#     sparse layers; dense SDPA after the same writes, and at B = 4 a device copy, a sum
#     and SDPA over each layer's bytes (decode_peers.py --same-bytes).
# Carry .dev-s13-decode (pack.sh). On the device: bash .dev-s13-decode/call1.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* 2>/dev/null | head -1); [ -n "$cb" ] && ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
s=$(date +%s)
END=${END:-150}
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
ck() { local out=$1; shift; ( timeout $(cap 55) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
for v in 4x3erms 4x3erams; do
  ck check-fixtures-$v $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant $v
  ck check-llama-bf16-$v $B/cuda_check --upstream $L --kv-heads 8 --dtypes bf16 --variant $v
  ck check-llama-f16-$v $B/cuda_check --upstream $L --kv-heads 8 --dtypes f16 --variant $v
  ck check-vicuna-bf16-$v $B/cuda_check --upstream $V --kv-heads 32 --dtypes bf16 --variant $v
  ck check-vicuna-f16-$v $B/cuda_check --upstream $V --kv-heads 32 --dtypes f16 --variant $v
  ( for tool in memcheck racecheck; do echo "== $tool"; timeout $(cap 50) compute-sanitizer --tool $tool $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant $v 2>&1 | tail -6; done > $R/sanitizer-$v.txt 2>&1 ) &
done
wait
for f in $R/check-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|rc=" $f | tail -3; done
grep -E "SUMMARY|==" $R/sanitizer-*.txt
pack checks
T="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7 --producer --launch pdl"
timeout $(cap 30) $B/attention_bench --model llama-3-8b:8:$L $T --variants 4x3ems,4x3erms,4x3erams \
  --json $R/bench-llama.jsonl > $R/bench-llama.md 2> $R/bench-llama.err
echo "bench llama rc=$?"; tail -2 $R/bench-llama.err; pack bench-llama
timeout $(cap 30) $B/attention_bench --model vicuna-7b:32:$V $T --variants 4x3ems,4x3erms,4x3erams \
  --json $R/bench-vicuna.jsonl > $R/bench-vicuna.md 2> $R/bench-vicuna.err
echo "bench vicuna rc=$?"; tail -2 $R/bench-vicuna.err; pack bench-vicuna
timeout $(cap 15) $B/attention_bench --model llama-3-8b:8:$L $T --variants 4x3ez,4x3erz,4x3eraz,4x3emsx,4x3ermsx,4x3eramsx \
  --chunks waves:10:pairs --layers 0,8,12,19,25,27,28,29 --json $R/probe.jsonl > $R/probe.md 2> $R/probe.err
echo "probe rc=$?"; tail -2 $R/probe.err
timeout $(cap 15) $B/attention_bench --model llama-3-8b:8:$L --batch 16 --prompt 4096,16384 --no-dense --replays 7 \
  --producer --launch pdl --variants 4x3ems,4x3erms,4x3erams --layers 25,27,28,29 \
  --chunks waves:10:packed,waves:10:pairs,waves:6:packed,waves:14:packed,packed:2,packed:4,packed:8 \
  --json $R/sweep.jsonl > $R/sweep.md 2> $R/sweep.err
echo "sweep rc=$?"; tail -2 $R/sweep.err; pack probe-sweep
cat $R/bench-llama.jsonl $R/bench-vicuna.jsonl > $R/bench.jsonl
timeout $(cap 35) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --same-bytes $R/bench.jsonl --same-bytes-batch 4 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err
echo "peers rc=$?"; tail -2 $R/peers.err; pack peers
timeout $(cap 20) $B/attention_bench --model llama-3-8b:8:$L $T --variants 4x3erams,4x3erms,4x3ems \
  --json $R/repeat-llama.jsonl > $R/repeat-llama.md 2> $R/repeat-llama.err
echo "repeat rc=$?"; tail -2 $R/repeat-llama.err
cat $R/probe.jsonl $R/sweep.jsonl > $R/probes-all.jsonl
python3 $C/tables.py $R/bench.jsonl $R/peers.jsonl $R/probes-all.jsonl > $R/summary.md 2>&1; head -30 $R/summary.md
python3 $C/tables.py $R/repeat-llama.jsonl $R/peers.jsonl /dev/null > $R/summary-repeat.md 2>&1; head -12 $R/summary-repeat.md
pack done
