#!/bin/bash
# Device call 1 (session 21, branch s21-decode): the last arrival merging from its own
# registers (`j`) against the defaults on every layer of both plans (A B | B A | A B), the
# checks of `j` (cuda_check bf16 / f16 on both plans, the fixtures, compute-sanitizer
# memcheck + racecheck on fixture-gqa), SDPA dense in the same call, and the SASS of the
# arrival (MEMBAR / ATOM / RED / CCTL counts per decode cubin, where cuobjdump exists).
#
# Predicted (before the call; benches/RESULTS.md decode "Session 21" has the reasoning):
# - `j` on plain lists with split segments (every Llama 16k list, Vicuna's plain lists,
#   Llama 4k's plain layers): the merger no longer waits for its own partial stores'
#   acknowledgements before its arrival (one L2 write round trip, ~0.5-0.9 µs of the
#   session-18/20 "stores" 1.1-1.4 µs, which also holds their issue and the grid end's
#   drain), less any wait for a chunk that arrived < ~0.7 µs before it and has not yet
#   published: -0.3 to -0.8 µs per layer in median (Llama B = 4 16k, Vicuna B = 4 4k),
#   similar at B = 16 16k; cluster lists (most of Llama's 4k layers) unchanged (A/A noise).
# - Targets (the gap to 3.8 TB/s per layer, from session 20's three passes of the same
#   defaults): Llama B = 4 16k 19/32 pass; short by 0.42 (7), 0.43 (1, a cluster list: no
#   change), 0.60 (24), 0.65 (23), 0.83 (4), 1.17-1.25 (21, 31, 26, 19, 12), 2.1-2.8 (25,
#   29, 27) µs: 19 -> 20-23. Vicuna B = 4 4k 18/32; short by 0.58 (22), 0.70 (3), 0.85 (18),
#   1.14+ (the rest): 18 -> 18-20. Llama B = 16 4k (>= 0.95 x SDPA) unchanged: 25 / 27 / 29
#   are cluster lists.
# - SASS: the default's arrival is MEMBAR + ATOM (acq_rel); `j`'s merger path has no MEMBAR
#   before its ATOM (acquire), one before the non-last chunk's RED (release).
#
# Carry .dev-s21-decode (benches/decode-h200/s16/pack.sh + spans.json). On the device:
#   END=200 bash .dev-s21-decode/call1.sh
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
GA=4x3eqmskv; GB=4x3eqmskvj; MA=4x3eiclms; MB=4x3eiclmsj
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
ck memcheck-$MB 45 compute-sanitizer --tool memcheck $B/cuda_check plans/fixture-mha.toml --dtypes bf16 --variant $MB
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
# 4. The arrival's instructions in each decode cubin (hash, function, counts).
#    (In call 1 this step ran past the call's 250 s limit over 217 cubins and returned
#    nothing; the SASS was read on the CPU machine instead, with nvdisasm from the
#    nvidia-cuda-nvdisasm wheel: benches/RESULTS.md decode "Session 21".)
if command -v cuobjdump > /dev/null || [ -x /usr/local/cuda/bin/cuobjdump ]; then
  CO=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
  for f in /tmp/cubins/*.cubin; do
    $CO -sass "$f" 2>/dev/null | awk -v h="$(basename $f .cubin | cut -c1-12)" '
      /Function :/ { fn=$3 } /MEMBAR/ { mb++ } /ATOM/ { at++ } /RED\./ { rd++ } /CCTL/ { cc++ }
      END { printf "%s %s MEMBAR=%d ATOM=%d RED=%d CCTL=%d\n", h, fn, mb, at, rd, cc }'
  done > $R/sass-counts.txt 2>&1
  # The arrival's neighbourhood in one Llama layer's cubin of each kernel (named by the caller).
  for h in $(cat $C/sass-pick.txt 2>/dev/null); do
    $CO -sass /tmp/cubins/$h*.cubin 2>/dev/null | grep -n -E -B3 -A3 "MEMBAR|ATOM|RED\.|CCTL" > $R/sass-$h.txt
  done
  echo "sass t=$(el)"
fi
pack done
