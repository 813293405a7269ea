#!/usr/bin/env bash
# Everything the tests need on a fresh Debian machine with a Rust toolchain, then the
# tests. `.ci/run` calls exactly this script.
#  - lavapipe (Mesa's Vulkan on the CPU), so the wgpu kernel tests really run;
#  - NVRTC and the CUDA headers from PyPI wheels, so every generated CUDA kernel is
#    compiled in CI without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

# ldconfig is in /usr/sbin, which a Debian user's PATH lacks: without it the check
# failed and every run asked for sudo to install what was there.
if ! PATH="$PATH:/usr/sbin:/sbin" ldconfig -p | grep -q libvulkan.so.1 || [ ! -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ]; then
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
# The example app that embeds a plan's kernels (examples/embed, its own crate): build.rs
# compiles the plan through the library, main runs the kernels on lavapipe and checks them
# against the CPU reference. Built in moa's target folder, so the dependencies `cargo test`
# built above are reused and only moa and the app compile again.
# Added time, measured on 2 cores shared with other builds: ~30 s to build (moa once more,
# as the app's dependency, and the app), ~13 s clippy, ~10 s to run.
cargo fmt --check --manifest-path examples/embed/Cargo.toml
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo clippy --locked --manifest-path examples/embed/Cargo.toml --all-targets -- -D warnings
cargo run --locked --manifest-path examples/embed/Cargo.toml
