#!/bin/bash
# Lead call of session 25 on merged main (0725020): the engine tests on the H200 after the
# session's default changes (the CUDA engine's zeroed decode partials, s25-decode; the wgpu
# engine's fused merge and 16-byte-word loads, s25-attn and the lead).
#   cargo test --release --no-run --test cuda_engine --test model_gpu
#   gzip -c the two binaries into .dev-s25-lead/{cuda_engine,model_gpu}.gz
#   bash benches/gl-debs.sh .dev-s25-lead/gl
#   run tool: "bash benches/lead-h200/s25/engine-tests.sh", carry [".dev-s25-lead"]
# Prediction: cuda_engine 13 passed (as sessions 23-24); model_gpu on the H200's Vulkan all
# passed but the ignored one (session 16: 24 passed, 1 ignored; now 29 tests).
D=.dev-s25-lead
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
for b in cuda_engine model_gpu; do gunzip -c $D/$b.gz > /tmp/$b; chmod +x /tmp/$b; done
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
s=$(date +%s)
timeout 150 /tmp/cuda_engine --test-threads 1 --skip real_smollm2 2>&1 | grep -E "^test |test result|panicked" | tee $OUT/cuda_engine.txt
echo "[t=$(( $(date +%s) - s ))s] cuda_engine done"
ldconfig -p | grep -q libvulkan.so.1 || { for f in $D/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
timeout 200 /tmp/model_gpu --test-threads 2 2>&1 | grep -E "^test |test result|panicked|assert" | tee $OUT/model_gpu.txt
echo "[t=$(( $(date +%s) - s ))s] model_gpu done"
