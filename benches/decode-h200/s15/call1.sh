#!/bin/bash
# Device call 1 (session 15, branch s15-decode): less work per tile on the warps' critical
# path, three opt-in letters against the default 4x3ems, checked and timed in one call.
#   i  cheap refill issue (one pointer per thread per tile, no per-piece bound test)
#   c  Q·Kᵀ in four MMA chains (2 dependent MMAs before the scores instead of 4)
#   l  lazy rescale (a warp vote keeps the running max: no shuffles, no correction, no
#      rescale of the 32 accumulators; ex2.approx.ftz; V fragments loaded before the branch)
# Predicted (before the call, from the SASS of layer 27: the loop body 426 instructions,
# 6 SHFL + 48 FMUL + 6 MUFU per tile on the default): the stream-and-math probe x − z
# (session 13: 1.3 / 1.9 / 3.1 µs at B = 4 4k / B = 16 4k / B = 16 16k) falls by a quarter
# to a third with all three (x' − x ≈ −0.3 / −0.5 / −0.9 µs), the full kernel by about as
# much: 4x3eiclms − 4x3ems ≈ −0.2 to −0.5 µs per layer at 4k, −0.5 to −1 µs at B = 16 16k;
# of the singles `l` most (≈ 60 % of it), `c` ≈ 20 %, `i` ≈ 0 to 20 % (its saving is off the
# last tiles' path). Llama B = 16 4k layers 25 / 27 / 29 need 0.65 / 0.8 / 1.5 µs: 25 may
# pass, 29 not. B = 4 4k moa / copy: 0.80 → 0.82.
#  1. Checks side by side: cuda_check of the fixtures (f32, f16, bf16) and of both upstream
#     plans in bf16 and f16 with 4x3eiclms; fixtures (f16, bf16) and Llama-3-8B bf16 with
#     each single letter; compute-sanitizer memcheck and racecheck on fixture-gqa bf16 with
#     4x3eiclms.
#  2. Timing alone, in the model's position (producer + programmatic launch): Llama-3-8B,
#     every layer, B = 16 and 4, 4k and 16k, 4x3ems / 4x3eims / 4x3ecms / 4x3elms / 4x3eiclms;
#     Vicuna-7B 4x3ems / 4x3eiclms; probes z / x / x' on 8 Llama layers (waves:10:pairs);
#     dense SDPA after the same writes and, at B = 4, a device copy and SDPA over each layer's
#     bytes (decode_peers.py --same-bytes); Llama again in the reverse order (A/B and A/A).
# Carry .dev-s15-decode (pack.sh). On the device: END=175 bash .dev-s15-decode/call1.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* 2>/dev/null | head -1); [ -n "$cb" ] && ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
s=$(date +%s)
END=${END:-175}
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
ck() { local out=$1; shift; ( timeout $(cap 68) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
v=4x3eiclms
ck check-fixtures-$v $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant $v
ck check-llama-bf16-$v $B/cuda_check --upstream $L --kv-heads 8 --dtypes bf16 --variant $v
ck check-llama-f16-$v $B/cuda_check --upstream $L --kv-heads 8 --dtypes f16 --variant $v
ck check-vicuna-bf16-$v $B/cuda_check --upstream $V --kv-heads 32 --dtypes bf16 --variant $v
ck check-vicuna-f16-$v $B/cuda_check --upstream $V --kv-heads 32 --dtypes f16 --variant $v
( for tool in memcheck racecheck; do echo "== $tool"; timeout $(cap 34) compute-sanitizer --tool $tool $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant $v 2>&1 | tail -6; done > $R/sanitizer-$v.txt 2>&1 ) &
for v in 4x3eims 4x3ecms 4x3elms; do
  ck check-fixtures-$v $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --dtypes f16,bf16 --variant $v
  ck check-llama-bf16-$v $B/cuda_check --upstream $L --kv-heads 8 --dtypes bf16 --variant $v
done
wait
for f in $R/check-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|rc=" $f | tail -3; done
grep -E "SUMMARY|==" $R/sanitizer-*.txt
pack checks
T="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7 --producer --launch pdl"
ALL=4x3ems,4x3eims,4x3ecms,4x3elms,4x3eiclms
timeout $(cap 30) $B/attention_bench --model llama-3-8b:8:$L $T --variants $ALL \
  --json $R/bench-llama.jsonl > $R/bench-llama.md 2> $R/bench-llama.err
echo "bench llama rc=$?"; tail -2 $R/bench-llama.err; pack bench-llama
timeout $(cap 20) $B/attention_bench --model vicuna-7b:32:$V $T --variants 4x3ems,4x3eiclms \
  --json $R/bench-vicuna.jsonl > $R/bench-vicuna.md 2> $R/bench-vicuna.err
echo "bench vicuna rc=$?"; tail -2 $R/bench-vicuna.err; pack bench-vicuna
timeout $(cap 10) $B/attention_bench --model llama-3-8b:8:$L $T --variants 4x3ez,4x3emsx,4x3eiclmsx \
  --chunks waves:10:pairs --layers 0,8,12,19,25,27,28,29 --json $R/probe.jsonl > $R/probe.md 2> $R/probe.err
echo "probe rc=$?"; tail -2 $R/probe.err; pack probe
cat $R/bench-llama.jsonl $R/bench-vicuna.jsonl > $R/bench.jsonl
timeout $(cap 30) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --same-bytes $R/bench.jsonl --same-bytes-batch 4 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err
echo "peers rc=$?"; tail -2 $R/peers.err; pack peers
timeout $(cap 30) $B/attention_bench --model llama-3-8b:8:$L $T --variants 4x3eiclms,4x3elms,4x3ecms,4x3eims,4x3ems \
  --json $R/repeat-llama.jsonl > $R/repeat-llama.md 2> $R/repeat-llama.err
echo "repeat rc=$?"; tail -2 $R/repeat-llama.err
python3 $C/tables.py $R/bench.jsonl $R/peers.jsonl $R/probe.jsonl 4x3ems $R/repeat-llama.jsonl > $R/summary.md 2>&1; head -30 $R/summary.md; grep -A16 "A/B with" $R/summary.md
pack done
