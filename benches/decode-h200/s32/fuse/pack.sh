#!/bin/bash
# Fills the carry folder of benches/decode-h200/s32/fuse/call1.sh (branch s32-fuse, session 32):
# the release wgpu_products_engine of this branch (gzipped; from BIN: copy it out of the shared
# target right after the build, other worktrees build into it), the Vulkan loader debs
# (benches/gl-debs.sh) and the call script.
#   CARGO_TARGET_DIR=/work/main/target cargo build --release --example wgpu_products_engine
#   BIN=/tmp/s32-fuse-bin bash benches/decode-h200/s32/dec/pack.sh /work/main/.dev-s32-fuse
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
carry=${1:-/work/main/.dev-s32-fuse}
bin=${BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/examples}
mkdir -p "$carry"
gzip -c "$bin/wgpu_products_engine" > "$carry/wpe.gz"
ls "$carry"/gl/*.deb > /dev/null 2>&1 || bash "$repo/benches/gl-debs.sh" "$carry/gl"
cp "$here"/call*.sh "$carry/"
du -sh "$carry"
