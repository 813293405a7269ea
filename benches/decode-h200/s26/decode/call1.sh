#!/bin/bash
# Device call 1 (session 26, branch s26-decode): the speculative merge (`d`) speculating
# only in the chunk likely to arrive last (decode_spec_chunk: the last of a segment's
# longest chunks in launch order; the other chunks load nothing before the arrival atomic
# says they merge), against the defaults.
#   1. checks side by side: cuda_check fixtures f32 / f16 / bf16 with 4x3eqmskvd and
#      4x3eiclmsjd; Llama-3-8B and Vicuna-7B bf16 + f16 with `d`; compute-sanitizer
#      memcheck + racecheck on fixture-gqa bf16 (4x3eqmskvd), memcheck on fixture-mha bf16
#      (4x3eiclmsjd)
#   2. the probe (cubins built with MOA_DECODE_SPEC_PROBE, Llama-3-8B layers 0, 7, 24, 29):
#      per layer, merges / by the speculating chunk / its speculation read a 0 word / the
#      other mergers reloaded, B = 16 and 4 at 16k
#   3. A B B A A B B A: Llama-3-8B every layer B = 16 / 4 at 16k (A = 4x3eqmskv, the
#      default; B = 4x3eqmskvd), Vicuna-7B every layer B = 4 at 4k (A = 4x3eiclmsj;
#      B = 4x3eiclmsjd); attention_bench checks that every `d` line left its partials 0
#   4. if time is left: Llama-3-8B B = 16 4k layers 25, 27, 29 (29 is 0.976-0.984 of the
#      bar, 25 / 27 at it): the default beside the probes z (stream only) and y (no
#      merge), and other lists (cluster:auto:10 = the same chunks as plain lists, packed:8)
#   SDPA is not rerun (the bar is session 25's: Llama B = 16 16k 4.21 TB/s, B = 16 4k 3.69).
#
# Predicted (before the call; the model in benches/RESULTS.md decode "Session 26"):
# - Llama B = 4 16k (31 plain split lists of 7-22 chunks, one wave): the merger's path
#   after its combine is the fence (~1.1 us) + the atomic and the loads (2 x ~0.7) in the
#   default; a speculating merger pays one round trip plus reloads. Session 25's every-
#   chunk `d` lost +1.0 / +2.6 us against a model that said -0.5..-1.0, so the model
#   misses something (13-21 chunks loading the same lines at once, or the reloads). My
#   prediction: B - A in median per pass -0.3..+0.6 us (a tie or a loss), not -1;
#   >= 3.8 TB/s 19-23 -> 17-23 of 32.
# - Llama B = 16 16k (2-4 chunks, two waves): the non-speculating chunks now exit after
#   the atomic alone (no loads, no fence): -0.5..+1.0 us (session 25: +2.8..+3.9).
# - Vicuna B = 4 4k (f32 partials, several waves): -0.2..+0.5 us.
# - Probe: the speculating chunk is the merger in 30-70% of merges at B = 4 16k (fewer
#   at B = 16); where it is, its speculative loads read a 0 word in most merges (a peer's
#   relaxed stores still in flight); the other mergers reload in a minority.
# - Checks: the maxima of s25's `d` (fixture-gqa 2.384e-7 / 3.635e-4 / 2.025e-3,
#   fixture-mha 1.788e-7 / 3.403e-4 / 1.953e-3; Llama bf16 2.063e-3, f16 3.989e-4;
#   Vicuna bf16 2.075e-3, f16 4.128e-4), memcheck 0 errors, racecheck 0 hazards, partials_nonzero 0.
# - Layer 29 (item 4): z and y at the same fraction of the default on 25, 27 and 29 would
#   put the gap in the bytes and the list, not the merge.
#
# Carry .dev-s26-decode (benches/decode-h200/s26/decode/pack.sh). On the device:
#   END=200 bash .dev-s26-decode/call1.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/s26c
for w in /work/main /work/wt-s26-decode; do [ -e $w ] || { mkdir -p /work && ln -s "$PWD" $w; }; done
s=$(date +%s)
END=${END:-200}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/s26r; rm -rf $R /tmp/s26c /tmp/s26p; mkdir -p $R /tmp/s26c /tmp/s26p /tmp/s26b
tar -xJf $C/cubins.tar.xz -C /tmp/s26c
tar -xJf $C/cubins-probe.tar.xz -C /tmp/s26p
for b in attention_bench cuda_check; do gunzip -c $C/$b.gz > /tmp/s26b/$b && chmod +x /tmp/s26b/$b; done
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/s26-decode-call1.tgz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
B=/tmp/s26b
GA=4x3eqmskv; GB=4x3eqmskvd; MA=4x3eiclmsj; MB=4x3eiclmsjd
# 1. Checks side by side (the sanitizers each in their own process).
ck() { local out=$1 t=$2; shift 2; ( timeout $(cap $t) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
ck check-fixtures-$GB 50 $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant $GB
ck check-fixtures-$MB 50 $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --variant $MB
for d in bf16 f16; do ck check-llama-$d-$GB 60 $B/cuda_check --upstream $L --kv-heads 8 --dtypes $d --variant $GB; done
for d in bf16 f16; do ck check-vicuna-$d-$MB 60 $B/cuda_check --upstream $V --kv-heads 32 --dtypes $d --variant $MB; done
ck memcheck-$GB 55 compute-sanitizer --tool memcheck $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant $GB
ck racecheck-$GB 60 compute-sanitizer --tool racecheck $B/cuda_check plans/fixture-gqa.toml --dtypes bf16 --variant $GB
ck memcheck-$MB 55 compute-sanitizer --tool memcheck $B/cuda_check plans/fixture-mha.toml --dtypes bf16 --variant $MB
wait
for f in $R/check-*.txt $R/memcheck-*.txt $R/racecheck-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|SUMMARY|rc=" $f | tail -3; done
pack checks
# 2. The probe: instrumented `d` cubins, four layers, both batches at 16k.
MOA_CUBIN_DIR=/tmp/s26p timeout $(cap 25) $B/attention_bench --model llama-3-8b:8:$L --batch 16,4 --prompt 16384 \
  --layers 0,7,24,29 --no-dense --replays 7 --producer --launch pdl --variants $GB --spec-probe \
  --json $R/probe.jsonl > $R/probe.md 2> $R/probe.err
echo "probe rc=$? t=$(el)"; grep probe $R/probe.err | head -8
pack probe
# 3. Blocks A B B A A B B A.
T="--no-dense --replays 7 --producer --launch pdl"
run() { local tag=$1 model=$2 v=$3; shift 3
  timeout $(cap 20) $B/attention_bench --model $model $T --variants $v "$@" --json $R/$tag.jsonl > $R/$tag.md 2> $R/$tag.err
  echo "$tag rc=$? t=$(el)"; grep -h "not 0" $R/$tag.err | head -3; }
run warm llama-3-8b:8:$L $GA --batch 4 --prompt 16384 --layers 0,27
i=0
for a in A B B A A B B A; do
  i=$((i + 1))   # passes: A1 B1 B2 A2 A3 B3 B4 A4
  [ $i -gt 4 ] && [ $(( END - $(el) )) -lt 60 ] && break
  case $a in A) g=$GA; m=$MA ;; B) g=$GB; m=$MB ;; esac
  n=$(ls $R/llama-$a*.jsonl 2>/dev/null | wc -l); n=$((n + 1))
  run llama-$a$n llama-3-8b:8:$L $g --batch 16,4 --prompt 16384
  run vicuna-$a$n vicuna-7b:32:$V $m --batch 4 --prompt 4096
  pack "arm $a$n"
done
# 4. Layer 29 at B = 16 4k beside 25 and 27 (item 4), if time is left.
if [ $(( END - $(el) )) -gt 25 ]; then
  timeout $(cap 25) $B/attention_bench --model llama-3-8b:8:$L --batch 16 --prompt 4096 --layers 25,27,29 $T \
    --variants $GA,4x3eqmskvz,4x3eqmskvy --chunks auto,cluster:auto:10,packed:8 \
    --json $R/l29.jsonl > $R/l29.md 2> $R/l29.err
  echo "l29 rc=$? t=$(el)"
fi
pack done
