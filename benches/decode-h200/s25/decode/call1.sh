#!/bin/bash
# Device call 1 (session 25, branch s25-decode): the speculative merge (`d`,
# DecodeTuning::spec_merge) against the defaults, both upstream plans, every layer of
# B = 16 / 4 x 4k / 16k: checks (cuda_check fixtures f32 / f16 / bf16, both plans bf16 +
# f16, compute-sanitizer memcheck + racecheck), blocks A B C | C B A | A B C (Llama-3-8B:
# A = 4x3eqmskv, B = 4x3eqmskvd, C = 4x3eqmskvj) and A B | B A | A B (Vicuna-7B: A =
# 4x3eiclmsj, B = 4x3eiclmsjd), then two more passes if time is left, SDPA dense after the
# same writes (decode_peers.py). attention_bench checks after timing that every `d` call
# left its partials all 0 (JSON `partials_nonzero`).
#
# Predicted (before the call; benches/RESULTS.md decode "Session 25" has the reasoning):
# - The last arrival's path after its combine: the fast merge's stores + fence (one
#   round trip of write acknowledgements), acq_rel atomic (one), the merge's loads (one),
#   then O; with `d` the atomic and the loads share one round trip and a peer publishes
#   with its stores alone (no fence, no release add). Llama-3-8B B = 4 16k (31 plain
#   split lists, 7-22 chunks a segment, one wave): B - A -0.5 to -1.0 us per layer in
#   median, >= 3.8 TB/s 19-22 -> 22-26 of 32 (4, 7, 23, 24 first; 27 / 29 need 2+ us).
#   B = 16 16k (2-4 chunks, two waves): -0.2 to -0.6 (the non-last chunks' loads hold
#   their slots one round trip longer: could cost the second wave). The 4k cluster lists
#   (26 of B = 16's, 21 of B = 4's): the same path, a tie; their plain lists -0.2 to -0.5.
#   C (`j`) - A: a tie, as in sessions 21 and 24.
# - Vicuna-7B (MHA, f32 partials, several waves): B - A -0.1 to -0.4 us in median at
#   B = 4, B = 4 4k >= 3.8 TB/s 19-20 -> 20-23; B = 16 a tie or -0.2.
# - Checks: the maxima of `v` / `j` (fixture-gqa 2.384e-7 / 3.635e-4 / 2.025e-3,
#   fixture-mha 1.788e-7 / 3.403e-4 / 1.953e-3; Llama-3-8B bf16 2.063e-3, f16 3.989e-4;
#   Vicuna-7B bf16 2.075e-3, f16 4.128e-4), memcheck 0 errors, racecheck 0 hazards,
#   partials_nonzero 0 on every layer.
#
# Carry .dev-s25-decode (benches/decode-h200/s25/decode/pack.sh). On the device:
#   END=185 bash .dev-s25-decode/call1.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
for w in /work/main /work/wt-s25-decode; do [ -e $w ] || { mkdir -p /work && ln -s "$PWD" $w; }; done
s=$(date +%s)
END=${END:-185}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r1; mkdir -p $R /tmp/cubins /tmp/bin
tar -xJf $C/cubins.tar.xz -C /tmp/cubins
for b in attention_bench cuda_check; do gunzip -c $C/$b.gz > /tmp/bin/$b && chmod +x /tmp/bin/$b; done
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/s25-decode-call1.tgz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
B=/tmp/bin
GA=4x3eqmskv; GB=4x3eqmskvd; GC=4x3eqmskvj; MA=4x3eiclmsj; MB=4x3eiclmsjd
# 1. Checks side by side (the sanitizers each in their own process).
ck() { local out=$1 t=$2; shift 2; ( timeout $(cap $t) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
ck check-fixtures-$GB 50 $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant $GB
ck check-fixtures-$MB 50 $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant $MB
for d in bf16 f16; do
  ck check-llama-$d-$GB 60 $B/cuda_check --upstream $L --kv-heads 8 --dtypes $d --variant $GB
  ck check-vicuna-$d-$MB 60 $B/cuda_check --upstream $V --kv-heads 32 --dtypes $d --variant $MB
done
ck memcheck-$GB 55 compute-sanitizer --tool memcheck $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant $GB
ck racecheck-$GB 60 compute-sanitizer --tool racecheck $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant $GB
ck memcheck-$MB 55 compute-sanitizer --tool memcheck $B/cuda_check plans/fixture-mha.toml --dtypes bf16 --variant $MB
wait
for f in $R/check-*.txt $R/memcheck-*.txt $R/racecheck-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|SUMMARY|rc=" $f | tail -3; done
pack checks
# 2. Every layer of every configuration in blocks.
T="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7 --producer --launch pdl"
run() { local tag=$1 model=$2 v=$3; shift 3
  timeout $(cap 25) $B/attention_bench --model $model $T --variants $v "$@" --json $R/$tag.jsonl > $R/$tag.md 2> $R/$tag.err
  echo "$tag rc=$? t=$(el)"; grep -h "not 0" $R/$tag.err | head -3; }
lm() { case $1 in A) echo $GA ;; B) echo $GB ;; C) echo $GC ;; esac; }
vm() { case $1 in A) echo $MA ;; B) echo $MB ;; esac; }
run warm llama-3-8b:8:$L $GA --layers 0,27
i=0
for blk in "A B C|A B" "C B A|B A" "A B C|A B" "C B A|B A" "A B C|A B"; do
  i=$((i + 1))
  if [ $i -gt 3 ] && [ $(( END - $(el) )) -lt 70 ]; then break; fi
  for a in ${blk%|*}; do run llama-$a$i llama-3-8b:8:$L $(lm $a); done
  for a in ${blk#*|}; do run vicuna-$a$i vicuna-7b:32:$V $(vm $a); done
  pack block$i
done
# 3. SDPA dense after the same writes (the bar), both models.
timeout $(cap 45) python3 $C/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none --producer \
  --replays 7 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err
echo "peers rc=$? t=$(el)"; tail -2 $R/peers.err; pack done
