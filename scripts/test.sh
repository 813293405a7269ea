#!/usr/bin/env bash
# Everything the tests need on a fresh Debian machine with a Rust toolchain, then the
# tests. `.ci/run` calls exactly this script.
#  - lavapipe (Mesa's Vulkan on the CPU), so the wgpu kernel tests really run;
#  - NVRTC and the CUDA headers from PyPI wheels, so every generated CUDA kernel is
#    compiled in CI without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step says what it does and how long it takes (2 CPU cores, README's figures: in all
# 13-35 min on a clean clone, most of it the test build and `cargo test`).
step() { echo "== scripts/test.sh $*" >&2; }

# ldconfig is in /usr/sbin, which a Debian user's PATH lacks: without it the check
# failed and every run asked for sudo to install what was there.
if ! PATH="$PATH:/usr/sbin:/sbin" ldconfig -p | grep -q libvulkan.so.1 || [ ! -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ]; then
    step "0/4: installing lavapipe (Mesa's Vulkan on the CPU) with apt-get (a minute)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1
fi

step "1/4: NVRTC and CUDA-header wheels from PyPI into .cache/cuda (0.45 GB the first time: a minute or more, by the link; then found at once)"
eval "$(scripts/cuda-deps.sh)"

# lavapipe prints harmless XDG warnings without a runtime dir
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 700 "$XDG_RUNTIME_DIR"

# moa's own crates (the library, its unit tests, 9 test binaries, 2 programs) built without
# incremental data: a run from a clean clone never reuses it, and writing it cost 213 s
# against 186 s for those crates on 2 cores (session 53, benches/RESULTS.md). A user's value
# stands; a `cargo test` with the default rebuilds those crates (not the dependencies) once.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step "2/4: cargo fmt --check, clippy and cargo doc (clippy builds every dependency the first time: minutes)"
cargo fmt --check
# The app in examples/embed has a lock file of its own that names moa's dependencies: a
# dependency added to moa without `cargo update -p moa` there failed CI only at step 4,
# after the whole test run (session 30). Checked here in seconds.
cargo metadata --locked --format-version 1 --manifest-path examples/embed/Cargo.toml > /dev/null
cargo clippy --all-targets --locked -- -D warnings
# The library's documentation, as an app's author reads it (`cargo doc --open`): a broken
# or private intra-doc link is an error (round 23 found 25, and the crate root's API
# comment invisible to rustdoc). Seconds: clippy above built every dependency's metadata.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib --locked
step "3/4: cargo test (the test build, ~10 min; then every test, ~25 min where lavapipe compiles each WGSL pipeline the first time)"
# The library, binaries and tests, then the doc tests. Not the examples: `cargo test`
# alone also builds (and links) every example, which clippy --all-targets above has
# already type-checked and linted, and no test runs one (session 28: ~8 links saved).
# Built in one invocation, so the library's unit-test build runs beside the library's
# (built one after the other before session 50, one core idle meanwhile).
cargo test --locked --lib --bins --tests --no-run
# The kernel tests run on a real wgpu adapter (lavapipe here); show which one.
cargo test --locked --test wgpu_kernels adapter_is_present -- --nocapture
cargo test --locked --lib --bins --tests
cargo test --locked --doc
# The example app that embeds a plan's kernels (examples/embed, its own crate): build.rs
# compiles the plan through the library, main runs the kernels on lavapipe and checks them
# against the CPU reference. Built in moa's target folder, so the dependencies `cargo test`
# built above are reused and only moa and the app compile again.
# Added time, measured on 2 cores shared with other builds: ~30 s to build (moa once more,
# as the app's dependency, and the app), ~13 s clippy, ~10 s to run.
step "4/4: examples/embed, the app with a plan's kernels compiled in (about a minute)"
cargo fmt --check --manifest-path examples/embed/Cargo.toml
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo clippy --locked --manifest-path examples/embed/Cargo.toml --all-targets -- -D warnings
cargo run --locked --manifest-path examples/embed/Cargo.toml
