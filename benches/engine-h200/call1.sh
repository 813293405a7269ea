#!/bin/bash
# Device call 1 (i11-engine, debug-profile moa binary): op kernels vs CPU references, greedy
# parity (CPU / CUDA f32+bf16 / wgpu), functional runs of the bench (SmolLM2 and 7B shapes),
# the HF peer at SmolLM2 16 x 4k.
D=$PWD/.dev-i11-engine
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
for f in $D/gl/*.deb; do dpkg -x $f / 2>/dev/null; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
# cudarc (CUDA 12.9 bindings) looks for libcublas.so or .so.12; the image has CUDA 13's.
mkdir -p /tmp/cl
cb=$(ls /usr/local/cuda/lib64/libcublas.so.* 2>/dev/null | head -1)
[ -z "$cb" ] && cb=$(find /usr/local /opt -name 'libcublas.so.*' 2>/dev/null | grep -v Lt | head -1)
el "cublas: $cb"; ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$(dirname $cb):$LD_LIBRARY_PATH
gunzip -c $D/moa.gz > /tmp/moa; chmod +x /tmp/moa; M=/tmp/moa
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee $OUT/env.txt
P50=plans/smollm2-135m-moa-50.toml
V7=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
el checks
timeout 100 $M bench --check-ops --parity 32 --wgpu --plan $P50 --checks-only --json $OUT/checks.jsonl > $OUT/checks.txt 2>&1
el "checks rc=$?"; grep -v " ok " $OUT/checks.txt | tail -40
el smollm2
timeout 45 $M bench --like smollm2-135m --plan $P50 --prompt 4096 --batch 16 --new 20 --launches --json $OUT/bench.jsonl > $OUT/bench-smollm2.md 2>&1
el "smollm2 rc=$?"; tail -12 $OUT/bench-smollm2.md
el 7b
timeout 60 $M bench --like llama-2-7b --plan $V7 --prompt 4096 --batch 4 --new 6 --json $OUT/bench.jsonl > $OUT/bench-7b.md 2>&1
el "7b rc=$?"; tail -12 $OUT/bench-7b.md
el hf
timeout 100 python3 $D/hf_decode.py --like smollm2-135m --prompt 4096 --batch 16 --new 32 --json $OUT/hf.jsonl > $OUT/hf.md 2> $OUT/hf.err
el "hf smollm2 rc=$?"; cat $OUT/hf.md; grep -v Warning $OUT/hf.err | tail -12
