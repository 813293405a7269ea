#!/usr/bin/env bash
# Fetches NVIDIA's CUDA 12.9 NVRTC, runtime headers and ptxas from PyPI wheels into a
# cache folder, so the CUDA kernels can be compiled (not run) on machines without a GPU
# or a CUDA toolkit. Idempotent: a second call with the cache in place downloads nothing.
#
# Usage:  eval "$(scripts/cuda-deps.sh)"        # default cache: <repo>/.cache/cuda
#         MOA_CUDA_CACHE=/some/dir scripts/cuda-deps.sh
#         MOA_CUDA_NO_PTXAS=1 scripts/cuda-deps.sh   # skip the 80 MB nvcc wheel (ptxas)
#
# Progress goes to stderr; stdout is only the `export` lines, so `eval` is safe:
#   LD_LIBRARY_PATH   gains the folder with libnvrtc.so.12 (cudarc loads it dynamically)
#   MOA_CUDA_INCLUDE  the folder with cuda_fp16.h (read by moa::runtime::cuda)
#   MOA_PTXAS         the ptxas binary (optional; tests assemble the PTX when it is set)
#
# The wheels are NVIDIA proprietary: fetch them, never commit them (.cache is ignored).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${MOA_CUDA_CACHE:-$repo/.cache/cuda}"
wheels=(nvidia-cuda-nvrtc-cu12==12.9.86 nvidia-cuda-runtime-cu12==12.9.79)
if [[ -z "${MOA_CUDA_NO_PTXAS:-}" ]]; then
    wheels+=(nvidia-cuda-nvcc-cu12==12.9.86)
fi

# shellcheck source=scripts/wheels.sh
source "$repo/scripts/wheels.sh"
fetch_wheels cuda-deps "$cache" "$cache/root" "${wheels[@]}"

nvrtc_lib="$cache/root/nvidia/cuda_nvrtc/lib"
include="$cache/root/nvidia/cuda_runtime/include"
ptxas="$cache/root/nvidia/cuda_nvcc/bin/ptxas"
if [[ ! -e "$nvrtc_lib/libnvrtc.so.12" || ! -e "$include/cuda_fp16.h" ]]; then
    echo "cuda-deps: unpacked wheels lack libnvrtc.so.12 or cuda_fp16.h under $cache/root; delete $cache and retry" >&2
    exit 1
fi

echo "export LD_LIBRARY_PATH=\"$nvrtc_lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
echo "export MOA_CUDA_INCLUDE=\"$include\""
if [[ -f "$ptxas" ]]; then
    # zipfile does not keep the executable bit.
    chmod +x "$ptxas"
    echo "export MOA_PTXAS=\"$ptxas\""
fi
