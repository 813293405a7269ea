#!/bin/bash
# Edge plans (mkplans-edges.py) through moa-compile --target wgsl and --target cuda
# (f16, f32, bf16), NVRTC on the CUDA output (nvrtc.py), and `moa plan show`. Run from
# a scratch folder holding ep/; MOA and MOA_COMPILE name the binaries; `source
# /work/cuda-env.sh` first.
here=$(cd "$(dirname "$0")" && pwd)
for p in ep/*.toml; do
  n=$(basename "$p" .toml)
  echo "##### $n"
  "$MOA" plan show "$p" --prompt-len 100 2>&1 | head -4 | sed 's/^/  show: /'; echo "  show exit ${PIPESTATUS[0]}"
  for t in wgsl cuda; do
    for d in f16 f32 bf16; do
      [ $t = wgsl ] && [ $d = bf16 ] && continue
      rm -rf "o/$n-$t-$d"
      "$MOA_COMPILE" "$p" -o "o/$n-$t-$d" --target $t --dtype $d -q > "o-$n-$t-$d.log" 2>&1
      rc=$?
      echo "  $t $d: moa-compile exit $rc $(grep -v '^$' "o-$n-$t-$d.log" | tail -c 400 | tr '\n' ' ')"
      if [ $rc = 0 ] && [ $t = cuda ]; then
        python3 "$here/nvrtc.py" "o/$n-$t-$d" | grep -v "^ok " | head -20; echo "    nvrtc exit ${PIPESTATUS[0]}"
      fi
    done
  done
done
