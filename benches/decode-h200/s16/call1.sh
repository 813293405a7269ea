#!/bin/bash
# Device call 1 (session 16, branch s16-decode): a block's start and the cluster merge's
# end, two opt-in letters against the defaults (GQA 4x3ems, MHA 4x3eiclms), checked and
# timed in one call, with an A/A repeat.
#   q  Q first: Q's 16 loads per thread issued right after griddepcontrol.wait, beside
#      row_pos's (the default's SASS issues them only after the first use of row_pos: two
#      dependent L2 round trips before the first tile's math and the third tile's refill)
#   p  push merge in clusters: each chunk st.async's its states into the merging block's
#      shared memory (an mbarrier's transaction count) instead of barrier.cluster twice
#      (each MEMBAR.ALL.GPU + UCGABAR; the second after the O stores) and a remote-load round
#      trip; a segment of one chunk writes O at once.
# Predicted (before the call): q −0.1 to −0.4 µs per launch (one L2 round trip at the
# block's start, partly hidden under the early tiles): ≤ 1 % at B = 16 4k, so it alone
# closes none of Llama-3-8B layers 25/27/29 (need 0.5/0.8/1.5 µs); at B = 4 16k it may
# carry layers 3, 28, 0 (need 0.02/0.08/0.24 µs). p −0.3 to −0.6 µs on cluster lists (Llama
# B = 16 4k 25/27/29 and most layers, B = 4 4k every layer, Vicuna pairs), 0 on plain
# lists: layer 25 passes, 27 maybe, 29 not. Both: additive (different ends of the kernel).
#  1. Checks side by side: cuda_check of the fixtures (f32, f16, bf16) with 4x3eqmps and
#     4x3eqiclmps, Llama-3-8B bf16 with 4x3eqms / 4x3emps / 4x3eqmps and f16 with 4x3eqmps,
#     Vicuna-7B bf16 with 4x3eqiclms / 4x3eiclmps / 4x3eqiclmps and f16 with 4x3eqiclmps;
#     compute-sanitizer memcheck and racecheck on fixture-gqa bf16 with 4x3eqmps.
#  2. Timing alone, in the model's position (producer + programmatic launch): every layer,
#     B = 16 and 4, 4k and 16k: Llama-3-8B 4x3ems / 4x3eqms / 4x3emps / 4x3eqmps, Vicuna-7B
#     4x3eiclms / 4x3eqiclms / 4x3eiclmps / 4x3eqiclmps; dense SDPA after the same writes and,
#     at B = 4, a device copy and SDPA over each layer's bytes (decode_peers.py
#     --same-bytes); both models again in the reverse order (A/B and A/A).
# Carry .dev-s16-decode (pack.sh). On the device: END=165 bash .dev-s16-decode/call1.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* 2>/dev/null | head -1); [ -n "$cb" ] && ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
s=$(date +%s)
END=${END:-165}
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
ck() { local out=$1; shift; ( timeout $(cap 58) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
ck check-fixtures-4x3eqmps $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant 4x3eqmps
ck check-fixtures-4x3eqiclmps $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant 4x3eqiclmps
for v in 4x3eqms 4x3emps 4x3eqmps; do
  ck check-llama-bf16-$v $B/cuda_check --upstream $L --kv-heads 8 --dtypes bf16 --variant $v
done
ck check-llama-f16-4x3eqmps $B/cuda_check --upstream $L --kv-heads 8 --dtypes f16 --variant 4x3eqmps
for v in 4x3eqiclms 4x3eiclmps 4x3eqiclmps; do
  ck check-vicuna-bf16-$v $B/cuda_check --upstream $V --kv-heads 32 --dtypes bf16 --variant $v
done
ck check-vicuna-f16-4x3eqiclmps $B/cuda_check --upstream $V --kv-heads 32 --dtypes f16 --variant 4x3eqiclmps
( for tool in memcheck racecheck; do echo "== $tool"; timeout $(cap 29) compute-sanitizer --tool $tool $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant 4x3eqmps 2>&1 | tail -6; done > $R/sanitizer-4x3eqmps.txt 2>&1 ) &
wait
for f in $R/check-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|rc=" $f | tail -3; done
grep -E "SUMMARY|==" $R/sanitizer-*.txt
pack checks
T="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7 --producer --launch pdl"
LV=4x3ems,4x3eqms,4x3emps,4x3eqmps
VV=4x3eiclms,4x3eqiclms,4x3eiclmps,4x3eqiclmps
timeout $(cap 26) $B/attention_bench --model llama-3-8b:8:$L $T --variants $LV \
  --json $R/bench-llama.jsonl > $R/bench-llama.md 2> $R/bench-llama.err
echo "bench llama rc=$?"; tail -2 $R/bench-llama.err; pack bench-llama
timeout $(cap 26) $B/attention_bench --model vicuna-7b:32:$V $T --variants $VV \
  --json $R/bench-vicuna.jsonl > $R/bench-vicuna.md 2> $R/bench-vicuna.err
echo "bench vicuna rc=$?"; tail -2 $R/bench-vicuna.err; pack bench-vicuna
cat $R/bench-llama.jsonl $R/bench-vicuna.jsonl > $R/bench.jsonl
timeout $(cap 28) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --same-bytes $R/bench.jsonl --same-bytes-batch 4 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err
echo "peers rc=$?"; tail -2 $R/peers.err; pack peers
timeout $(cap 22) $B/attention_bench --model llama-3-8b:8:$L $T --variants 4x3eqmps,4x3emps,4x3eqms,4x3ems \
  --json $R/repeat-llama.jsonl > $R/repeat-llama.md 2> $R/repeat-llama.err
echo "repeat llama rc=$?"; tail -2 $R/repeat-llama.err; pack repeat-llama
timeout $(cap 22) $B/attention_bench --model vicuna-7b:32:$V $T --variants 4x3eqiclmps,4x3eiclmps,4x3eqiclms,4x3eiclms \
  --json $R/repeat-vicuna.jsonl > $R/repeat-vicuna.md 2> $R/repeat-vicuna.err
echo "repeat vicuna rc=$?"; tail -2 $R/repeat-vicuna.err
pack done
