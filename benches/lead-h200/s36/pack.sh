#!/bin/bash
# Fills the carry folder of benches/lead-h200/s36/merged.sh (session 36's lead call on merged main):
# the tests/model_gpu.rs and tests/cuda_engine.rs test binaries, the release wgpu_products_engine
# and cuda_check (xz: the tree is ≈ 45 MiB, gzip left the call over 64 MiB; from BIN: copy them out of the shared target right after the build), the
# Vulkan loader debs (benches/gl-debs.sh) and the call script.
#   cargo build --release --examples && cargo test --release --test model_gpu --test cuda_engine --no-run
#   BIN=/tmp/lead36-bin bash benches/lead-h200/s36/pack.sh /work/main/.dev-lead36
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
carry=${1:-/work/main/.dev-lead36}
bin=${BIN:?BIN must name the folder holding model_gpu, cuda_engine, wgpu_products_engine and cuda_check}
mkdir -p "$carry"
xz -9e -c "$bin/model_gpu" > "$carry/model_gpu.xz"
xz -9e -c "$bin/cuda_engine" > "$carry/ce.xz"
xz -9e -c "$bin/wgpu_products_engine" > "$carry/wpe.xz"
xz -9e -c "$bin/cuda_check" > "$carry/cuda_check.xz"
ls "$carry"/gl/*.deb > /dev/null 2>&1 || bash "$repo/benches/gl-debs.sh" "$carry/gl"
cp "$here"/merged.sh "$carry/"
du -sh "$carry"
