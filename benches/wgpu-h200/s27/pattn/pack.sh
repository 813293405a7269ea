#!/bin/bash
# Fills the carry folder DEST (/work/main/.dev-s27-pattn) of call1.sh from this branch's
# release builds: wgpu_products_engine (wpe) and tests/model_gpu.rs, gzipped, call1.sh and
# the Vulkan loader .debs.
#   cargo build --release --example wgpu_products_engine   (copied to /tmp/s27-pattn-bin/)
#   cargo test --release --test model_gpu --no-run          (likewise)
#   bash benches/wgpu-h200/s27/pattn/pack.sh /work/main/.dev-s27-pattn /tmp/s27-pattn-bin
set -e
DEST=$1; BIN=$2; mkdir -p "$DEST"
gzip -c "$BIN/model_gpu" > "$DEST/model_gpu.gz"
gzip -c "$BIN/wgpu_products_engine" > "$DEST/wpe.gz"
ls "$DEST"/gl/*.deb > /dev/null 2>&1 || bash benches/gl-debs.sh "$DEST/gl"
cp "$(dirname "$0")"/call*.sh "$DEST/"
du -sh "$DEST"
