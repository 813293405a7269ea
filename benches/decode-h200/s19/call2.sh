#!/bin/bash
# Device call 2 (session 19, branch s19-decode): `h` again after call 1's finding that its
# kernel compiled to 128 registers instead of 164 (the merge of up to 16 ranks held 48
# values at once; now groups of 8 ranks with an online rescale: 164 registers, as the
# default), and with the policy's ties going to clusters of 8 (16 only where the longest
# item gets strictly shorter). Checks of the new kernel first (racecheck given the time
# call 1 lacked), then every Llama-3-8B layer in blocks A B | B A | A B, then `packed:16`
# (a full wave of clusters of 16) beside A at B = 4 16k on layers 1, 25, 27, 29.
#
# Predicted (before the call): B = 16 (no list changes) ties A within the A/A noise;
# B = 4 16k layers 27 / 29 -0.3 to -1 µs (call 1, net of its kernel penalty: about 0 at
# 1088-slot chunks; packed:16's 1024-slot list on layer 27 -0.9 µs with the penalty);
# B = 4 4k's changed layers -0.2 to -0.6 µs where the longest item gets shorter (0, 3, 25,
# 27, 29), plain -> 16 (5, 6, 8-11, 13-15) unclear.
#
# Carry .dev-s19-decode (benches/decode-h200/s16/pack.sh). On the device:
#   END=95 bash .dev-s19-decode/call2.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
s=$(date +%s)
END=${END:-95}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r2; mkdir -p $R /tmp/cubins /tmp/bin
tar -xJf $C/cubins.tar.xz -C /tmp/cubins
for b in attention_bench cuda_check; do gunzip -c $C/$b.gz > /tmp/bin/$b && chmod +x /tmp/bin/$b; done
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tgz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=/tmp/bin
H=4x3eqmskh
# 1. Checks side by side (the sanitizers each in their own process).
ck() { local out=$1 t=$2; shift 2; ( timeout $(cap $t) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
ck check-fixtures-$H 40 $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant $H
for d in bf16 f16; do ck check-llama-$d-$H 40 $B/cuda_check --upstream $L --kv-heads 8 --dtypes $d --variant $H; done
ck memcheck-$H 40 compute-sanitizer --tool memcheck $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant $H
# racecheck beside the checks, never beside the timing: the timing waits for it (at most
# 50 s).
ck racecheck-$H 50 compute-sanitizer --tool racecheck $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant $H
wait
for f in $R/check-*.txt $R/memcheck-*.txt $R/racecheck-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|SUMMARY|rc=" $f | tail -3; done
pack checks
# 2. Every layer in blocks: warm-up, then A B | B A | A B.
T="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7 --producer --launch pdl"
run() { local tag=$1 v=$2; shift 2
  timeout $(cap 20) $B/attention_bench --model llama-3-8b:8:$L $T --variants $v "$@" --json $R/$tag.jsonl > $R/$tag.md 2> $R/$tag.err
  echo "$tag rc=$? t=$(el)"; }
run warm 4x3eqmsk --layers 0,27
run A1 4x3eqmsk; run B1 $H
pack block1
run B2 $H; run A2 4x3eqmsk
pack block2
run A3 4x3eqmsk; run B3 $H
pack block3
grep -h "resident" $R/*.err | sort | uniq -c
# 3. A full wave of clusters of 16 (packed:16) beside A at B = 4 16k.
T="--batch 4 --prompt 16384 --no-dense --replays 7 --producer --launch pdl --layers 1,25,27,29"
run A4 4x3eqmsk; run P4 $H --chunks packed:16; run P5 $H --chunks packed:16; run A5 4x3eqmsk
pack done
