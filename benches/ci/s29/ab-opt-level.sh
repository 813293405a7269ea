#!/bin/bash
# B (opt-level 0, moa) vs C (opt-level 1 for moa): the same tests, B C C B, CPU time
export XDG_RUNTIME_DIR=/tmp/xdg-s29-ci
source /work/cuda-env.sh
run() { # tag, dir, binary, then the test filter
  local tag=$1 dir=$2 bin=$3; shift 3
  cd $dir
  /usr/bin/time -f "$tag $(basename $bin) $* wall %e user %U sys %S" nice $bin "$@" 2>&1 | grep -E "test result|wall|FAILED|panicked" 
  echo "   load $(cut -d' ' -f1-3 /proc/loadavg)"
}
B=/tmp/s29-ci-bins-B-group; C=/tmp/s29-ci-bins-C-opt1
for tag in B C C B; do
  if [ $tag = B ]; then d=/work/wt-s29-ci; g=$B/group-3e883bc00466e95a; l=$B/moa-0bf4c28341fb33c3; else d=/tmp/s29-ci-opt1; g=$C/group-b6d84cd5bc26a1bc; l=$C/moa-06ea8d782baed39a; fi
  run $tag $d $g prefill_bf16_rounding::
  run $tag $d $l
  run $tag $d $g cuts::
done
