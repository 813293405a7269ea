#!/bin/bash
# Fills the carry folder of benches/decode-h200/s30/attn/call1.sh (branch s30-attn, session 30):
# the release wgpu_products_engine and wgpu_decode_bench of this branch (gzipped; from BIN:
# copy them out of the shared target right after the build, other worktrees build into it),
# the Vulkan loader debs (benches/gl-debs.sh) and the call script.
#   CARGO_TARGET_DIR=/work/main/target cargo build --release --example wgpu_products_engine --example wgpu_decode_bench
#   BIN=/tmp/s30-attn-bin bash benches/decode-h200/s30/attn/pack.sh /work/main/.dev-s30-attn
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
carry=${1:-/work/main/.dev-s30-attn}
bin=${BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/examples}
mkdir -p "$carry"
gzip -c "$bin/wgpu_products_engine" > "$carry/wpe.gz"
gzip -c "$bin/wgpu_decode_bench" > "$carry/wdb.gz"
ls "$carry"/gl/*.deb > /dev/null 2>&1 || bash "$repo/benches/gl-debs.sh" "$carry/gl"
cp "$here"/call*.sh "$carry/"
du -sh "$carry"
