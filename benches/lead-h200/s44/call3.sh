#!/bin/bash
# Session 44, lead call 3. Calls 1-2 (H100): one module shared by layers of equal code made the
# SmolLM2 uniform-50 / moa-50 graph steps ~0.1 ms slower, dense unchanged; the slowdown is the
# same with 30 layers sharing (uniform) as with 9 (moa-50), so not a cost a shared launch pays.
# QUESTION: is it where the buffers land (fewer modules loaded before the caches are allocated)?
# L = a diagnostic build's MOA_CUDA_DIAG_LOAD_ALL=1: shared functions, every layer's module still loaded.
# PREDICTION: L = P's times if it is the memory layout; L = S's if it is the shared function.
D=$(cd "$(dirname "$0")" && pwd); R=${OUT:-/tmp}/r; mkdir -p "$R"
s=$(date +%s); END=${END:-200}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
cap() { local c=$(( END - ($(date +%s) - s) )); [ $c -gt $1 ] && c=$1; echo $c; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* | head -1); ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
gunzip -c "$D/moa.gz" > /tmp/moa && chmod +x /tmp/moa
mkdir -p /tmp/cub && python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('/tmp/cub')" "$D/cub.txz" \
  && export MOA_CUBIN_DIR=/tmp/cub
SD=$D/smollm2-dense.toml; U50=plans/smollm2-135m-uniform-50.toml; M50=plans/smollm2-135m-moa-50.toml
smol() { local tag=$1; shift
  env "$@" timeout $(cap 45) /tmp/moa bench --like smollm2-135m --no-dense --plan $SD --plan $U50 --plan $M50 \
    --prompt 4096 --batch 16 --new 40 --prefill-rows 4 > "$R/smol-$tag.md" 2>&1
  el "smol $tag rc=$? $(grep -E '^\| ' "$R/smol-$tag.md" | grep -E 'graph' | awk -F'|' '{printf "%s %s ms; ", $2, $9}')"; }
smol S1 MOA_CUDA_SHARED_MODULES=1; smol L1 MOA_CUDA_SHARED_MODULES=1 MOA_CUDA_DIAG_LOAD_ALL=1; smol P1 MOA_CUDA_SHARED_MODULES=0
smol P2 MOA_CUDA_SHARED_MODULES=0; smol L2 MOA_CUDA_SHARED_MODULES=1 MOA_CUDA_DIAG_LOAD_ALL=1; smol S2 MOA_CUDA_SHARED_MODULES=1
el done
