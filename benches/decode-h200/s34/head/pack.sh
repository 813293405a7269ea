#!/bin/bash
# Fills the carry folder of benches/decode-h200/s34/head/call*.sh (branch s34-head, session 34):
# the release wgpu_products_engine and wgpu_decode_bench of this branch (gzipped; from BIN: copy
# them out of the shared target right after the build, other worktrees build into it), the
# Vulkan loader debs (benches/gl-debs.sh) and the call scripts.
#   CARGO_TARGET_DIR=/work/main/target cargo build --release --example wgpu_products_engine --example wgpu_decode_bench
#   BIN=/tmp/s34-head-bin bash benches/decode-h200/s34/head/pack.sh /work/main/.dev-s34-head
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
carry=${1:-/work/main/.dev-s34-head}
bin=${BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/examples}
mkdir -p "$carry"
gzip -c "$bin/wgpu_products_engine" > "$carry/wpe.gz"
gzip -c "$bin/wgpu_decode_bench" > "$carry/wdb.gz"
ls "$carry"/gl/*.deb > /dev/null 2>&1 || bash "$repo/benches/gl-debs.sh" "$carry/gl"
cp "$here"/call*.sh "$carry/"
du -sh "$carry"
