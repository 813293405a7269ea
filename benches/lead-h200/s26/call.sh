#!/bin/bash
# Lead call of session 26 on merged main: (1) s26-attn's call 2 (its script's header holds
# the questions and predictions; binaries of the s26-attn branch in .dev-s26-attn), then
# (2) the engine tests after the session's changes (the CUDA engine's decode partials no
# longer zeroed now that `d` is removed, s26-decode; the wgpu engine's per-class maxima by
# default, s26-attn).
#   cargo test --release --no-run --test cuda_engine --test model_gpu
#   gzip -c the two binaries into .dev-s26-lead/{cuda_engine,model_gpu}.gz
#   bash benches/gl-debs.sh .dev-s26-lead/gl
#   run tool: "bash benches/lead-h200/s26/call.sh", carry [".dev-s26-lead", ".dev-s26-attn"]
# Prediction: cuda_engine 13 passed (as sessions 23-25); model_gpu on the H200's Vulkan all
# passed but the ignored one (session 25: 28 passed, 1 ignored).
D=.dev-s26-lead
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
s=$(date +%s)
RDIR=/tmp/s26attn2 END=100 timeout 110 bash .dev-s26-attn/call2.sh > $OUT/attn-call2.log 2>&1
echo "[t=$(( $(date +%s) - s ))s] attn call 2 done"
for b in cuda_engine model_gpu; do gunzip -c $D/$b.gz > /tmp/$b; chmod +x /tmp/$b; done
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
timeout 150 /tmp/cuda_engine --test-threads 1 --skip real_smollm2 2>&1 | grep -E "^test |test result|panicked" | tee $OUT/cuda_engine.txt
echo "[t=$(( $(date +%s) - s ))s] cuda_engine done"
ldconfig -p | grep -q libvulkan.so.1 || { for f in $D/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
timeout 200 /tmp/model_gpu --test-threads 2 2>&1 | grep -E "^test |test result|panicked|assert" | tee $OUT/model_gpu.txt
echo "[t=$(( $(date +%s) - s ))s] model_gpu done"
