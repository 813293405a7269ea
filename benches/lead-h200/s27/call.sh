#!/bin/bash
# Lead call of session 27 on merged main 548bed1: (1) s27-pattn's call 2 (its script's header
# holds the question and predictions: which of the group form's variants passes the
# start-up check, and its attention ms a prefill pass; binaries of 80cc4f1 in
# .dev-s27-pattn), capped at END=140 s; then (2) the engine tests after the session's
# changes (the prefill products' new 128 x 128 matrix-unit kernel built without naga's
# runtime checks, s27-gemm; the group form opt-in, s27-pattn).
#   cargo test --release --no-run --test cuda_engine --test model_gpu
#   gzip -c the two binaries into .dev-s27-lead/{cuda_engine,model_gpu}.gz
#   run tool: "bash benches/lead-h200/s27/call.sh", carry [".dev-s27-lead", ".dev-s27-pattn"]
# Prediction: cuda_engine 13 passed (as sessions 23-26); model_gpu on the H200's Vulkan all
# passed but the ignored one (session 26: 28 passed, 1 ignored), now with the new product
# kernel in every prefill test that runs on matrix units.
D=.dev-s27-lead
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
s=$(date +%s)
END=140 timeout 175 bash .dev-s27-pattn/call2.sh > $OUT/pattn-call2.log 2>&1
echo "[t=$(( $(date +%s) - s ))s] pattn call 2 done"
for b in cuda_engine model_gpu; do gunzip -c $D/$b.gz > /tmp/lead-$b; chmod +x /tmp/lead-$b; done
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
timeout 45 /tmp/lead-cuda_engine --test-threads 1 --skip real_smollm2 2>&1 | grep -E "^test |test result|panicked" | tee $OUT/cuda_engine.txt
echo "[t=$(( $(date +%s) - s ))s] cuda_engine done"
ldconfig -p | grep -q libvulkan.so.1 || { for f in .dev-s27-pattn/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
timeout 110 /tmp/lead-model_gpu --test-threads 2 2>&1 | grep -E "^test |test result|panicked|assert" | tee $OUT/model_gpu.txt
echo "[t=$(( $(date +%s) - s ))s] model_gpu done"
