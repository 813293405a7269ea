#!/bin/bash
# Device call 2 (session 24, branch s24-decode; written after call 1, NOT YET RUN: the
# helper's device share was spent): plain lists whose segments' tiles are spread evenly over
# their chunks (`waves:10:packed:last:0`, DecodeWork::build_last_longer with extra 0) against
# the default list (equal chunks, a short last chunk) and call 1's best (`last:1`), default
# kernel 4x3eqmskv, Llama-3-8B at 16k (B = 4 and 16: the configurations whose lists change;
# no B = 16 4k list changes, B = 4 4k's 5 changed lists are 2-3 chunks a segment).
#
# Predicted (before the call, from call 1's sweep: `last:1` gained 0.3-0.5 us on exactly the
# B = 4 16k layers whose default list ends each long segment with a chunk of <= 4 tiles,
# 0 / 19 / 21 / 26 / 31, and lost 0.1-0.3 us where it lengthens the longest item by a tile):
# - B = 4 16k: last:0 -0.3 to -0.5 us on layers 0, 19, 21, 26, 31 (every pass, beyond the
#   A/A), the 15 other changed lists within +-0.15, the 12 unchanged lists the A/A; geomean
#   0.994-0.998; >= 3.8 TB/s 19 -> 19 (19 / 21 / 26 / 31 end near 3.72-3.74: no cell).
# - B = 16 16k (9 lists change, two waves): within +-0.3 us; 32/32 stays.
# - cuda_check Llama-3-8B bf16 with the new list cases: 2.063e-3 (1952 + 1 list a case).
#
# Carry .dev-s24-decode (pack.sh with this script). On the device:
#   END=100 bash .dev-s24-decode/call2.sh
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
s=$(date +%s)
END=${END:-100}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r2; mkdir -p $R /tmp/cubins /tmp/bin
tar -xJf $C/cubins.tar.xz -C /tmp/cubins
for b in attention_bench cuda_check; do gunzip -c $C/$b.gz > /tmp/bin/$b && chmod +x /tmp/bin/$b; done
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/s24-decode-call2.tgz -C $R .; }
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=/tmp/bin
GA=4x3eqmskv
ck() { local out=$1 t=$2; shift 2; ( timeout $(cap $t) "$@" > $R/$out.txt 2>&1; echo "rc=$?" >> $R/$out.txt ) & }
ck check-llama-bf16-$GA 45 $B/cuda_check --upstream $L --kv-heads 8 --dtypes bf16 --variant $GA
ck check-fixtures-$GA 30 $B/cuda_check plans/fixture-gqa.toml --variant $GA
wait
for f in $R/check-*.txt; do echo "== $f"; grep -E "pass|FAIL|fail|error|rc=" $f | tail -3; done
pack checks
T="--no-dense --replays 7 --producer --launch pdl --batch 16,4 --prompt 16384 --variants $GA"
run() { local tag=$1 t=$2; shift 2
  timeout $(cap $t) $B/attention_bench --model llama-3-8b:8:$L $T "$@" --json $R/$tag.jsonl > $R/$tag.md 2> $R/$tag.err
  echo "$tag rc=$? t=$(el)"; }
run warm 15 --layers 0,27
arm() { case $1 in A) echo "--chunks auto" ;; D) echo "--chunks waves:10:packed:last:0" ;; E) echo "--chunks waves:10:packed:last:1" ;; esac; }
i=0
for blk in "A D E" "E D A" "A D E"; do
  i=$((i + 1))
  for a in $blk; do run llama-$a$i 15 $(arm $a); done
  pack block$i
done
pack done
