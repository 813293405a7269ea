#!/bin/bash
# Device call 2 (session 15, branch s15-decode): the MHA default becomes 4x3eiclms
# (codegen::cuda::DecodeTuning::default_for, group of 1; call 1: faster on every
# Vicuna-7B layer of the four configurations, a tie on Llama-3-8B). Checks with exactly
# that default (cuda_check without --variant resolves it per plan), the sanitizers on the
# MHA fixture, and Vicuna-7B timed again in the reverse order (call 1 timed it once).
# Predicted: every check passes (call 1: the same kernels as --variant 4x3eiclms), memcheck
# 0 errors, racecheck 0 hazards; Vicuna 4x3eiclms − 4x3ems per layer −0.1 to −1.3 µs again.
# Carry .dev-s15-decode (pack.sh). On the device: END=70 bash .dev-s15-decode/call2.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
s=$(date +%s)
END=${END:-70}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r2; mkdir -p $R /tmp/cubins /tmp/bin
tar -xJf $C/cubins.tar.xz -C /tmp/cubins
for b in attention_bench cuda_check; do gunzip -c $C/$b.gz > /tmp/bin/$b && chmod +x /tmp/bin/$b; done
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results2.tgz -C $R .; }
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
B=/tmp/bin
ck() { local out=$1; shift; ( timeout $(cap 48) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
ck check-fixtures-default $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml
ck check-vicuna-bf16-default $B/cuda_check --upstream $V --kv-heads 32 --dtypes bf16
ck memcheck-mha-bf16-default compute-sanitizer --tool memcheck $B/cuda_check plans/fixture-mha.toml --dtypes bf16
ck racecheck-mha-bf16-default compute-sanitizer --tool racecheck $B/cuda_check plans/fixture-mha.toml --dtypes bf16
wait
for f in $R/*-default.txt; do echo "== $f"; grep -E "pass|FAIL|fail|SUMMARY|RACECHECK|rc=" $f | tail -4; done
pack checks
T="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7 --producer --launch pdl"
timeout $(cap 20) $B/attention_bench --model vicuna-7b:32:$V $T --variants 4x3eiclms,4x3ems \
  --json $R/repeat-vicuna.jsonl > $R/repeat-vicuna.md 2> $R/repeat-vicuna.err
echo "repeat vicuna rc=$?"; tail -2 $R/repeat-vicuna.err
pack done
