#!/bin/bash
# Fills the carry folder DEST (/work/main/.dev-s29-pattn) of call1.sh from this branch's
# release wgpu_products_engine (copied to BIN right after its build: other worktrees'
# builds overwrite target/release), gzipped, the call script and the Vulkan loader .debs
# (from GL, default /work/main/.gl, else benches/gl-debs.sh).
#   cargo build --release --example wgpu_products_engine; cp target/release/examples/wgpu_products_engine BIN/
#   bash benches/wgpu-h200/s29/pattn/pack.sh /work/main/.dev-s29-pattn /tmp/s29-pattn-bin
set -e
DEST=$1; BIN=$2; mkdir -p "$DEST"
gzip -c "$BIN/wgpu_products_engine" > "$DEST/wpe.gz"
mkdir -p "$DEST/gl"; ls "$DEST"/gl/*.deb > /dev/null 2>&1 || cp "${GL:-/work/main/.gl}"/*.deb "$DEST/gl/" || bash benches/gl-debs.sh "$DEST/gl"
cp "$(dirname "$0")"/call*.sh "$DEST/"
du -sh "$DEST"
