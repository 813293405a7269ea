#!/bin/bash
# Session 44, lead call 5 (NOT RUN: no device was lent after call 4; for the next session) (CUDA; the probe binary of calls 1-3, carry .dev-s44). Calls 1 and 3 ran dense, uniform-50
# and moa-50 in ONE process; uniform-50 was 8% slower when fewer modules had been loaded before its buffers (S: one
# module for dense, one for uniform) and back at P's speed with every module loaded (L). QUESTION: what does a process
# that runs ONE plan (how `moa generate`/an app runs) get: P's 1.17 ms or S's 1.27? Each run its own process, one plan.
# PREDICTION: none firm; if a lone uniform-50 process is at ~1.27 in P too, the fast figure of calls 1/3 was the lucky
# placement and an 8% lever exists in where the engine puts its buffers.
D=$(cd "$(dirname "$0")" && pwd); R=${OUT:-/tmp}/r; mkdir -p "$R"
s=$(date +%s); END=${END:-150}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
cap() { local c=$(( END - ($(date +%s) - s) )); [ $c -gt $1 ] && c=$1; echo $c; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* | head -1); ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
gunzip -c "$D/moa.gz" > /tmp/moa && chmod +x /tmp/moa
mkdir -p /tmp/cub && python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('/tmp/cub')" "$D/cub.txz" \
  && export MOA_CUBIN_DIR=/tmp/cub
SD=$D/smollm2-dense.toml; U50=plans/smollm2-135m-uniform-50.toml; M50=plans/smollm2-135m-moa-50.toml
one() { local tag=$1 plan=$2 v=$3
  MOA_CUDA_SHARED_MODULES=$v timeout $(cap 30) /tmp/moa bench --like smollm2-135m --no-dense --plan $plan \
    --prompt 4096 --batch 16 --new 40 --prefill-rows 4 > "$R/$tag.md" 2>&1
  el "$tag rc=$? $(grep -E '^\| ' "$R/$tag.md" | grep graph | awk -F'|' '{printf "%s %s ms; ", $2, $9}')"; }
for rep in 1 2; do
  one u-P$rep $U50 0; one u-S$rep $U50 1; one m-P$rep $M50 0; one m-S$rep $M50 1; one d-P$rep $SD 0; one d-S$rep $SD 1
done
el done
