#!/bin/bash
# Device call 1 (session 20, branch s20-decode): half partials (`v`) against the defaults on
# every layer of both plans (A B | B A | A B), the checks of `v`, SDPA dense in the same
# call, then where the missing cells' time goes: the list shapes of Llama-3-8B B = 16 4k
# layers 25 / 27 / 29 (chunk policies side by side), the probes x / n / y (and y with `v`)
# on the missing layers, and one ncu look at a packed:16 list against the default's.
#
# Predicted (before the call; benches/RESULTS.md decode "Session 20" has the reasoning):
# - `v` on plain lists with split segments (Llama B = 4 16k, Vicuna B = 4 4k, Llama B = 16
#   4k's plain layers 19 21 23 24 26 31, Llama B = 4 4k's plain layers): -0.3 to -0.9 µs per
#   launch (the partial's stores, y - n = 1.4-1.9 µs on Llama, ~halve: -0.3 to -0.6; the
#   merge's loads halve); on the 17-22-chunk segments (B = 4 16k layers 27 / 29) one merge
#   round trip instead of two: -1.0 to -1.5 µs. Vicuna (MHA, 512 B partials): -0.1 to -0.3.
#   Cluster lists (most of B = 16 4k and B = 4 4k): no change (A/A noise).
# - y - n with `v` (the half stores) 0.4-0.8 µs below y - n without it.
# - Target counts (s19's A means, fit-s19-llama.md: every missing cell lies on the line
#   time = c + bytes / R, c = 9.3 µs at B = 4 16k, 9.6 at B = 16 4k; the missing cells are
#   the ones with the fewest bytes, not the ones with the most chunks): Llama B = 4 16k
#   >= 3.8 TB/s from 20-21 to 24-26 of 32 (4, 7, 23, 24 need <= 0.54 µs, 12 0.85);
#   Llama B = 16 4k stays 29/32 (25 / 27 / 29 are cluster lists: `v` does not touch them);
#   Vicuna B = 4 4k 18 -> 18-19 (22 needs 0.58 µs, 3 0.76).
# - Task 1's lists (B = 16 4k, layers 25 / 27 / 29, clusters of 4 with 224 of 264 slots):
#   the auto list is within 0.5 µs of the best of packed:2/4/8 and the plain lists
#   (waves:10, waves:10:pairs); plain lists 1-3 µs slower (the merge through L2).
#
# Carry .dev-s20-decode (benches/decode-h200/s16/pack.sh + spans.json). On the device:
#   END=200 bash .dev-s20-decode/call1.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
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
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
B=/tmp/bin
GA=4x3eqmsk; GB=4x3eqmskv; MA=4x3eiclms; MB=4x3eiclmsv
# 1. Checks side by side (the sanitizers each in their own process).
ck() { local out=$1 t=$2; shift 2; ( timeout $(cap $t) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
ck check-fixtures-$GB 45 $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant $GB
ck check-fixtures-$MB 45 $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant $MB
for d in bf16 f16; do
  ck check-llama-$d-$GB 50 $B/cuda_check --upstream $L --kv-heads 8 --dtypes $d --variant $GB
  ck check-vicuna-$d-$MB 50 $B/cuda_check --upstream $V --kv-heads 32 --dtypes $d --variant $MB
done
ck memcheck-$GB 45 compute-sanitizer --tool memcheck $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant $GB
ck racecheck-$GB 55 compute-sanitizer --tool racecheck $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant $GB
wait
for f in $R/check-*.txt $R/memcheck-*.txt $R/racecheck-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|SUMMARY|rc=" $f | tail -3; done
pack checks
# 2. Every layer in blocks: warm-up, then A B | B A | A B, per model.
T="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7 --producer --launch pdl"
run() { local tag=$1 model=$2 v=$3; shift 3
  timeout $(cap 25) $B/attention_bench --model $model $T --variants $v "$@" --json $R/$tag.jsonl > $R/$tag.md 2> $R/$tag.err
  echo "$tag rc=$? t=$(el)"; }
run warm llama-3-8b:8:$L $GA --layers 0,27
run llama-A1 llama-3-8b:8:$L $GA; run llama-B1 llama-3-8b:8:$L $GB
run vicuna-A1 vicuna-7b:32:$V $MA; run vicuna-B1 vicuna-7b:32:$V $MB
pack block1
run llama-B2 llama-3-8b:8:$L $GB; run llama-A2 llama-3-8b:8:$L $GA
run vicuna-B2 vicuna-7b:32:$V $MB; run vicuna-A2 vicuna-7b:32:$V $MA
pack block2
run llama-A3 llama-3-8b:8:$L $GA; run llama-B3 llama-3-8b:8:$L $GB
run vicuna-A3 vicuna-7b:32:$V $MA; run vicuna-B3 vicuna-7b:32:$V $MB
pack block3
# 3. SDPA dense after the same writes (the bar), both models.
timeout $(cap 40) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err
echo "peers rc=$? t=$(el)"; tail -2 $R/peers.err; pack peers
# 4. Where the missing cells' time goes. (a) B = 16 4k lists side by side (default kernel).
PB="--no-dense --replays 7 --producer --launch pdl"
timeout $(cap 15) $B/attention_bench --model llama-3-8b:8:$L $PB --batch 16 --prompt 4096 --layers 19,23,24,25,27,29 \
  --variants $GA,$GB --chunks auto,packed:2,packed:4,packed:8,waves:10:pairs,waves:10 --json $R/lists16.jsonl > $R/lists16.md 2>> $R/probe.err
echo "lists16 rc=$? t=$(el)"
# (b) probes, variants interleaved per layer.
P="4x3eqmskx,4x3eqmskn,4x3eqmsky,4x3eqmskvy,$GA,$GB"
timeout $(cap 12) $B/attention_bench --model llama-3-8b:8:$L $PB --batch 16 --prompt 4096 --layers 19,23,24,25,27,29 \
  --variants $P --json $R/probe-llama16.jsonl > $R/probe-llama16.md 2>> $R/probe.err
echo "probe llama16 rc=$? t=$(el)"
timeout $(cap 12) $B/attention_bench --model llama-3-8b:8:$L $PB --batch 4 --prompt 16384 --layers 1,4,7,25,27,29 \
  --variants $P --json $R/probe-llama4.jsonl > $R/probe-llama4.md 2>> $R/probe.err
echo "probe llama4 rc=$? t=$(el)"
pack probes
# 5. ncu: the packed:16 list of layer 1 (B = 4 16k) with `h` against the default's list,
#    one launch each, no graph (serialised: no programmatic overlap).
if command -v ncu > /dev/null; then
  timeout $(cap 45) ncu --clock-control none --section SpeedOfLight --section LaunchStats --section Occupancy \
    --section WarpStateStats -k regex:moa_decode -c 2 \
    $B/attention_bench --model llama-3-8b:8:$L --no-dense --batch 4 --prompt 16384 --layers 1 --launches 1 --replays 1 \
    --variants 4x3eqmskh --chunks packed:16 > $R/ncu-h16.txt 2>&1; echo "ncu h16 rc=$? t=$(el)"
  timeout $(cap 40) ncu --clock-control none --section SpeedOfLight --section LaunchStats --section Occupancy \
    --section WarpStateStats -k regex:moa_decode -c 2 \
    $B/attention_bench --model llama-3-8b:8:$L --no-dense --batch 4 --prompt 16384 --layers 1 --launches 1 --replays 1 \
    --variants $GA > $R/ncu-a.txt 2>&1; echo "ncu a rc=$? t=$(el)"
fi
pack done
