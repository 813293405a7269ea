#!/usr/bin/env bash
# Builds `moa` with the `cuda` feature (profiling and calibration answers through candle on
# an NVIDIA GPU: `moa calib --device cuda`, `moa profile --device cuda`) on a machine with
# no GPU and no CUDA toolkit, from PyPI wheels, and prints the binary's path on stdout.
#
# Usage:  scripts/build-cuda-profiler.sh                 # binary: target/cuda-profiler/release/moa
#         MOA_CUDA_CACHE=/dir CARGO_TARGET_DIR=/dir scripts/build-cuda-profiler.sh
#
# What it does (docs/CALIBRATION.md, "Profiling on the GPU"):
# 1. Fetches nvcc and the headers it needs (CUDA 13.0.x wheels) into $MOA_CUDA_CACHE
#    (default <repo>/.cache/cuda) and unpacks them under cu13/; a second run downloads
#    nothing. 13.0.x, not newer: a CUDA 13.0 driver (580) refuses PTX from a newer nvcc
#    (CUDA_ERROR_UNSUPPORTED_PTX_VERSION), and candle ships its kernels as PTX.
# 2. Writes empty stub libraries with the real sonames (libcuda.so.1, libnvrtc.so.13,
#    libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libcudart.so.13): candle's cudarc
#    links these dynamically, and no wheel holds the driver's libcuda. The executable gets
#    NEEDED entries for them and binds lazily; on the GPU machine they resolve through
#    LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/cuda/lib64 (driver + toolkit).
# 3. `cargo rustc --release --no-default-features --features cuda --bin moa`: candle's
#    `cuda` turns on cudarc's `dynamic-linking`, which cudarc refuses beside the
#    `dynamic-loading` that moa's default feature `cuda-loading` selects, so this build
#    drops the default and moa's own CUDA runtime links the same way (CUDA 13.0 API).
#    candle-kernels compiles every .cu file with nvcc: about 10 minutes on 2 cores.
#
# The binary does not start on a machine without libcuda.so.1 and the CUDA 13 libraries
# (the ordinary build, without the feature, does). The wheels are NVIDIA proprietary:
# fetch them, never commit them.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${MOA_CUDA_CACHE:-$repo/.cache/cuda}"
target="${CARGO_TARGET_DIR:-$repo/target/cuda-profiler}"
root="$cache/cu13"
wheels=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-cuda-cccl==13.0.85
    nvidia-cuda-runtime==13.0.96
)

# shellcheck source=scripts/wheels.sh
source "$repo/scripts/wheels.sh"
fetch_wheels build-cuda-profiler "$cache" "$root" "${wheels[@]}"

cuda="$root/nvidia/cu13"
if [[ ! -f "$cuda/bin/nvcc" || ! -f "$cuda/include/cuda_fp16.h" ]]; then
    echo "build-cuda-profiler: $cuda lacks bin/nvcc or include/cuda_fp16.h; delete $root and retry" >&2
    exit 1
fi
# zipfile does not keep the executable bit.
chmod +x "$cuda"/bin/* "$cuda"/nvvm/bin/*

stubs="$root/stubs"
mkdir -p "$stubs"
link_args=()
for pair in cuda:libcuda.so.1 nvrtc:libnvrtc.so.13 cublas:libcublas.so.13 \
    cublasLt:libcublasLt.so.13 curand:libcurand.so.10 cudart:libcudart.so.13; do
    lib="${pair%%:*}"
    soname="${pair##*:}"
    if [[ ! -f "$stubs/lib$lib.so" ]]; then
        echo 'int moa_cuda_stub;' | gcc -shared -fPIC -x c -o "$stubs/lib$lib.so" \
            -Wl,-soname,"$soname" -
    fi
    # The soname too, so the binary can be started here for its CPU paths
    # (LD_LIBRARY_PATH=$stubs); any CUDA call then fails with a symbol lookup error.
    ln -sf "lib$lib.so" "$stubs/$soname"
    link_args+=(-C "link-arg=$stubs/lib$lib.so")
done

export PATH="$cuda/bin:$PATH"
export NVCC="$cuda/bin/nvcc" CUDA_HOME="$cuda" CUDA_ROOT="$cuda" CUDA_PATH="$cuda"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
# cudarc reads the CUDA version from here (its build script does not know nvcc 13.x
# version strings of every patch release).
export CUDARC_CUDA_VERSION=13000
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"
export CARGO_TARGET_DIR="$target"

cd "$repo"
# The stubs are empty: their symbols are left unresolved at link time (--unresolved-
# symbols=ignore-all) and bound lazily at run time (-z lazy), and --no-as-needed keeps
# the NEEDED entries the linker would otherwise drop for libraries it took nothing from.
cargo rustc --release --locked --no-default-features --features cuda --bin moa -- \
    -L "native=$stubs" \
    -C link-arg=-Wl,--unresolved-symbols=ignore-all \
    -C link-arg=-Wl,-z,lazy \
    -C link-arg=-Wl,--no-as-needed \
    "${link_args[@]}" >&2

bin="$target/release/moa"
if ! readelf -d "$bin" | grep -q 'libcuda.so.1'; then
    echo "build-cuda-profiler: $bin has no NEEDED entry for libcuda.so.1" >&2
    exit 1
fi

# Libraries that let the binary start on this machine (its CPU paths: a dry run of a
# device script): the same sonames, defining every CUDA symbol the binary takes the
# address of at load time (lazy binding covers calls only); each returns 999
# (CUDA_ERROR_UNKNOWN), so a CUDA call here fails cleanly.
run_stubs="$stubs/run"
mkdir -p "$run_stubs"
nm -D --undefined-only "$bin" | awk '{print $NF}' | sed 's/@.*//' |
    grep -E '^(cu|nvrtc|cublas|curand|__cuda)' | sort -u |
    sed 's/.*/int &(void) { return 999; }/' >"$run_stubs/stubs.c"
for pair in cuda:libcuda.so.1 nvrtc:libnvrtc.so.13 cublas:libcublas.so.13 \
    cublasLt:libcublasLt.so.13 curand:libcurand.so.10 cudart:libcudart.so.13; do
    gcc -shared -fPIC -o "$run_stubs/${pair##*:}" -Wl,-soname,"${pair##*:}" "$run_stubs/stubs.c"
done
echo "build-cuda-profiler: to start it here (CPU paths only): LD_LIBRARY_PATH=$run_stubs $bin" >&2
echo "$bin"
