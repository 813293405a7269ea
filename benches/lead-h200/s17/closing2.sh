#!/bin/bash
# Lead's second call of session 17 (≈ 110 s of command; run tool timeout_s 140), after
# `m` became the bf16 prefill default at head_dim 128 (CUDA_PREFILL_TC_HEAD_TILES):
#  1. tests/cuda_engine.rs on the H200 (the engine's prefill launches the new default),
#     skipping the SmolLM2 test that needs the network. PREDICTION: 12/12 pass (m's
#     cuda_check and sanitizers passed in s17-prefill's call 2).
#  2. the three tests/model_gpu.rs tests the first call's 300 s cap left unrun (the
#     products' new default against the CPU reference on the H200's Vulkan).
# Carry: cuda_engine.gz, mg.gz, gl/ (benches/gl-debs.sh), this script.
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/lead2; mkdir -p "$R"
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
for b in cuda_engine mg; do gunzip -c "$D/$b.gz" > /tmp/$b; chmod +x /tmp/$b; done
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
timeout 60 /tmp/cuda_engine --test-threads 1 --skip real_smollm2 > "$R/engine-tests.txt" 2>&1; el "engine rc=$?"
grep -E "^test |test result|panicked" "$R/engine-tests.txt" | tail -16
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
timeout 60 /tmp/mg --test-threads 1 swiglu_in_the_gate_up_epilogue_matches_the_cpu_reference \
  tiny_model_matches_cpu_reference_dense_and_sparse weights_over_the_binding_limit_are_split_by_rows > "$R/model_gpu.txt" 2>&1; el "model_gpu rc=$?"
grep -E "^test |test result|panicked" "$R/model_gpu.txt" | tail -8
el done
