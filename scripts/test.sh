#!/usr/bin/env bash
# Everything the tests need on a fresh Debian machine with a Rust toolchain, then the
# tests. `.ci/run` calls exactly this script.
#  - lavapipe (Mesa's Vulkan on the CPU), so the wgpu kernel tests really run;
#  - NVRTC and the CUDA headers from PyPI wheels, so every generated CUDA kernel is
#    compiled in CI without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ldconfig -p | grep -q libvulkan.so.1 || [ ! -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1
fi

eval "$(scripts/cuda-deps.sh)"

# lavapipe prints harmless XDG warnings without a runtime dir
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 700 "$XDG_RUNTIME_DIR"

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# The kernel tests run on a real wgpu adapter (lavapipe here); show which one.
cargo test --locked --test wgpu_kernels adapter_is_present -- --nocapture
cargo test --locked
