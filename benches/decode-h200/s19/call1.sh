#!/bin/bash
# Device call 1 (session 19, branch s19-decode): clusters of up to 16 blocks (`h`) against
# the GQA default 4x3eqmsk on every Llama-3-8B layer, timed in blocks (a warm-up, then
# A B | B A | A B: two A/B pairs in each order and an A/A), SDPA dense beside; the checks
# of `h` first (fixtures, both Llama-3-8B dtypes, compute-sanitizer).
#
#   h  the cluster merge takes segments of up to 16 chunks (CUDA's non-portable cluster
#      size; the function allows it, tiles.cluster = 16), and the GQA policy
#      waves:10:packed then also tries clusters of 16 (first, ties to the larger): a list
#      whose segments need 9-16 chunks (Llama-3-8B B = 4 16k: 12-22 with the waves
#      chunk) can merge in distributed shared memory instead of through L2.
#
# Predicted (before the call): resident clusters of 16 = 14 (224 blocks; GPCs of 18/16/14
#   SMs at 2 blocks per SM) or fewer; the lists change only where the packed fit
#   (91 % of those) holds: Llama B = 4 16k layers whose long segments are few (e.g. 27:
#   8 long + 24 short segments; 29: 12 + 20), -1.5 to -2.5 µs there (the L2 merge
#   2.1-3.8 µs and the partial stores ~1.8 against the exchange ~0.8, less one to five
#   tiles longer items); unchanged lists tie (the kernel differs only in the merge's
#   bound, registers may move).
#
# Carry .dev-s19-decode (benches/decode-h200/s16/pack.sh, then spans.json). On the device:
#   END=200 bash .dev-s19-decode/call1.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* 2>/dev/null | head -1); [ -n "$cb" ] && ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
s=$(date +%s)
END=${END:-200}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r1; mkdir -p $R /tmp/cubins /tmp/bin
tar -xJf $C/cubins.tar.xz -C /tmp/cubins
for b in attention_bench cuda_check; do gunzip -c $C/$b.gz > /tmp/bin/$b && chmod +x /tmp/bin/$b; done
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tgz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=/tmp/bin
H=4x3eqmskh
# 1. Checks side by side.
ck() { local out=$1; shift; ( timeout $(cap 55) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
ck check-fixtures-$H $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant $H
for d in bf16 f16; do ck check-llama-$d-$H $B/cuda_check --upstream $L --kv-heads 8 --dtypes $d --variant $H; done
( for tool in memcheck racecheck; do echo "== $tool"; timeout $(cap 27) compute-sanitizer --tool $tool $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant $H 2>&1 | tail -6; done > $R/sanitizer-$H.txt 2>&1 ) &
wait
for f in $R/check-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|rc=" $f | tail -3; done
grep -E "SUMMARY|==" $R/sanitizer-*.txt
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
# A full wave of clusters of 16 (packed:16: the shortest chunk whose list fits every
# resident cluster of 16, no 91 % margin) at B = 4 16k, beside A: what the margin costs.
T="--batch 4 --prompt 16384 --no-dense --replays 7 --producer --launch pdl"
run A4 4x3eqmsk; run P4 $H --chunks packed:16
pack full16
grep -h "resident" $R/*.err | sort | uniq -c
# 3. SDPA dense after the same writes (every configuration).
timeout $(cap 40) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err
echo "peers rc=$?"; tail -2 $R/peers.err; pack done
