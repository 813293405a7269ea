#!/bin/bash
# Session 44, lead call 1 (issue 8 / the CUDA engine's step; one GPU, CUDA only). Carry `.dev-s44`
# (moa.gz and cuda_check.gz of this commit, cub.txz = MOA_CUBIN_DIR cubins built here with
# `cuda_cubins --dtypes bf16 --ops` over the three SmolLM2 plans below and `--upstream v:32:VICUNA
# --dense-full`, this script, the dense SmolLM2 plan). Run: "END=230 bash .dev-s44/call1.sh".
# QUESTION: session 43 found on the wgpu engine that a dispatch whose code differs from the last one's
# starts cold (~5 us a layer). The CUDA engine loads each layer's kernels from a module of its own,
# so even a dense plan runs 30 different copies of one code. MOA_CUDA_SHARED_MODULES (this commit,
# default 1) loads one module for layers of equal code (dense, uniform: 1 module; moa-50: 21 of 30).
# S = shared (default), P = a module a layer (=0, every earlier session's engine).
# PREDICTION: SmolLM2 16 x 4096 step (session 1: dense 1.562, moa-50 1.557 ms): dense and uniform-50
# S below P by 3-8% (~2-4 us a layer of decode attention); moa-50 S about P (21 distinct modules).
# Vicuna-7B shape B = 16 4k: dense S below P by <= 2% (12.5 ms step; ~5 us x 32 = 0.16 ms).
D=$(cd "$(dirname "$0")" && pwd); R=${OUT:-/tmp}/r; mkdir -p "$R"
s=$(date +%s); END=${END:-230}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
cap() { local c=$(( END - ($(date +%s) - s) )); [ $c -gt $1 ] && c=$1; echo $c; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* | head -1); ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
for b in moa cuda_check; do gunzip -c "$D/$b.gz" > /tmp/$b && chmod +x /tmp/$b; done
mkdir -p /tmp/cub && python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('/tmp/cub')" "$D/cub.txz" \
  && export MOA_CUBIN_DIR=/tmp/cub
el "start: $(ls /tmp/cub | wc -l) cubins"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$R/gpu.txt" 2>&1
SD=$D/smollm2-dense.toml; U50=plans/smollm2-135m-uniform-50.toml; M50=plans/smollm2-135m-moa-50.toml
V7=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
smol() { local tag=$1 v=$2
  left 30 || { el "skip $tag"; return; }
  MOA_CUDA_SHARED_MODULES=$v timeout $(cap 45) /tmp/moa bench --like smollm2-135m --no-dense --plan $SD --plan $U50 --plan $M50 \
    --prompt 4096 --batch 16 --new 40 --prefill-rows 4 --json "$R/smol.jsonl" > "$R/smol-$tag.md" 2>&1
  el "smol $tag rc=$? $(grep -E '^\| ' "$R/smol-$tag.md" | grep graph | awk -F'|' '{printf "%s %s ms; ", $2, $9}')"; }
smol S1 1; smol P1 0; smol P2 0; smol S2 1
# Correctness of the shared path: every layer of moa-50 (21 modules for 30 layers) against the CPU reference.
left 40 && { timeout $(cap 40) /tmp/cuda_check $M50 --dtypes bf16 > "$R/check-m50.txt" 2>&1; el "check m50 rc=$?"; tail -3 "$R/check-m50.txt"; }
big() { local tag=$1 v=$2
  left 50 || { el "skip $tag"; return; }
  MOA_CUDA_SHARED_MODULES=$v timeout $(cap 60) /tmp/moa bench --like llama-2-7b --plan $V7 --prompt 4096 --batch 16 --new 14 \
    --prefill-rows 4 --json "$R/7b.jsonl" > "$R/7b-$tag.md" 2>&1
  el "7b $tag rc=$? $(grep -E '^\| ' "$R/7b-$tag.md" | grep graph | awk -F'|' '{printf "%s %s ms; ", $2, $9}')"; }
big S1 1; big P1 0
smol S3 1; smol P3 0
el done
