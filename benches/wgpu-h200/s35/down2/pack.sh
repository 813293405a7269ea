#!/bin/bash
# Fills the carry folder of benches/wgpu-h200/s35/down2/call*.sh (branch s35-down2, session 35):
# the release wgpu_products_engine of this branch (gzipped; from BIN: copy
# them out of the shared target right after the build, other worktrees build into it), the
# Vulkan loader debs (benches/gl-debs.sh) and the call scripts.
#   CARGO_TARGET_DIR=/work/main/target cargo build --release --example wgpu_products_engine
#   BIN=/tmp/s35-down2-bin bash benches/wgpu-h200/s35/down2/pack.sh /work/main/.dev-s35-down2
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
carry=${1:-/work/main/.dev-s35-down2}
bin=${BIN:?BIN must name the folder holding wgpu_products_engine}
mkdir -p "$carry"
gzip -c "$bin/wgpu_products_engine" > "$carry/wpe.gz"
ls "$carry"/gl/*.deb > /dev/null 2>&1 || bash "$repo/benches/gl-debs.sh" "$carry/gl"
cp "$here"/call*.sh "$carry/"
du -sh "$carry"
