#!/bin/bash
# Fills the carry folder of benches/wgpu-h200/s35/lead/call5.sh (session 35's lead call on merged
# main): the tests/model_gpu.rs test binary and the release wgpu_products_engine (gzipped; from BIN:
# copy them out of the shared target right after the build), the Vulkan loader debs
# (benches/gl-debs.sh) and the call scripts.
#   cargo build --release --examples && cargo test --release --test model_gpu --no-run
#   BIN=/tmp/lead35-bin bash benches/wgpu-h200/s35/lead/pack.sh /work/main/.dev-lead35e
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
carry=${1:-/work/main/.dev-lead35e}
bin=${BIN:?BIN must name the folder holding model_gpu and wgpu_products_engine}
mkdir -p "$carry"
gzip -c "$bin/model_gpu" > "$carry/model_gpu.gz"
gzip -c "$bin/wgpu_products_engine" > "$carry/wpe.gz"
ls "$carry"/gl/*.deb > /dev/null 2>&1 || bash "$repo/benches/gl-debs.sh" "$carry/gl"
cp "$here"/call5.sh "$carry/"
du -sh "$carry"
