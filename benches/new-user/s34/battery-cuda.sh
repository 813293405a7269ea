#!/bin/bash
# The CUDA target's compile-only path on odd plans: moa-compile --target cuda for each
# dtype, then NVRTC (nvrtc.py) on what it wrote. Run from a scratch folder holding cp/
# (mkplans-cuda.py); MOA_COMPILE names the binary; `source /work/cuda-env.sh` first.
here=$(cd "$(dirname "$0")" && pwd)
for p in cp/*.toml; do
  n=$(basename "$p" .toml)
  for d in f16 f32 bf16; do
    rm -rf "cu/$n-$d"
    s=$(date +%s.%N)
    "$MOA_COMPILE" "$p" -o "cu/$n-$d" --target cuda --dtype "$d" -q > "cu-$n-$d.log" 2>&1
    rc=$?
    t=$(echo "$(date +%s.%N) - $s" | bc)
    echo "### $n $d: moa-compile exit $rc (${t}s): $(grep -v '^$' "cu-$n-$d.log" | tail -c 300 | tr '\n' ' ')"
    if [ $rc = 0 ] && [ "$d" != f32 ] || { [ $rc = 0 ] && [ "$n" = hd64 ]; }; then
      python3 "$here/nvrtc.py" "cu/$n-$d" | grep -v "^ok " ; echo "    nvrtc exit ${PIPESTATUS[0]}"
    fi
  done
done
