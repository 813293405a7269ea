#!/bin/bash
# Device call 2 (session 16, branch s16-decode): Q first (`q`) becomes the GQA default
# (codegen::cuda::DecodeTuning::default_for, group >= 2: 4x3eqms; call 1: 0.992–0.999 of
# 4x3ems's time in geometric mean per Llama-3-8B configuration in both runs). Checks with
# exactly that default (cuda_check without --variant resolves it per plan; the bf16 cubins
# are call 1's 4x3eqms byte for byte), the sanitizers on the GQA fixture, and Llama-3-8B
# timed a third time (4x3ems against the default, the default first).
# Predicted: every check passes with call 1's maxima (Llama bf16 2.063e-3, f16 3.989e-4),
# memcheck 0 errors, racecheck 0 hazards; default − 4x3ems per configuration −0.05 to
# −0.25 µs in median again.
# Carry .dev-s16-decode (pack.sh). On the device: END=58 bash .dev-s16-decode/call2.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
s=$(date +%s)
END=${END:-58}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r2; mkdir -p $R /tmp/cubins /tmp/bin
tar -xJf $C/cubins.tar.xz -C /tmp/cubins
for b in attention_bench cuda_check; do gunzip -c $C/$b.gz > /tmp/bin/$b && chmod +x /tmp/bin/$b; done
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results2.tgz -C $R .; }
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=/tmp/bin
ck() { local out=$1; shift; ( timeout $(cap 44) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
ck check-fixtures-default $B/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml
ck check-llama-bf16-default $B/cuda_check --upstream $L --kv-heads 8 --dtypes bf16
ck check-llama-f16-default $B/cuda_check --upstream $L --kv-heads 8 --dtypes f16
ck memcheck-gqa-bf16-default compute-sanitizer --tool memcheck $B/cuda_check plans/fixture-gqa.toml --dtypes bf16
ck racecheck-gqa-bf16-default compute-sanitizer --tool racecheck $B/cuda_check plans/fixture-gqa.toml --dtypes bf16
wait
for f in $R/*-default.txt; do echo "== $f"; grep -E "pass|FAIL|fail|SUMMARY|RACECHECK|hazard|rc=" $f | tail -4; done
pack checks
T="--batch 16,4 --prompt 4096,16384 --no-dense --replays 7 --producer --launch pdl"
timeout $(cap 12) $B/attention_bench --model llama-3-8b:8:$L $T --variants 4x3eqms,4x3ems \
  --json $R/third-llama.jsonl > $R/third-llama.md 2> $R/third-llama.err
echo "third llama rc=$?"; tail -2 $R/third-llama.err
pack done
