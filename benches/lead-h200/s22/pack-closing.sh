#!/bin/bash
# Fills the carry folder DEST (.dev-s22-close) of closing.sh from this checkout's release
# build: tests/model_gpu.rs and wgpu_products_engine (wpe), gzipped, s22-wgpu's call2.sh
# and the Vulkan loader .debs.
#   cargo build --release --example wgpu_products_engine
#   cargo test --release --test model_gpu --no-run
#   bash benches/lead-h200/s22/pack-closing.sh .dev-s22-close
set -e
DEST=$1; mkdir -p "$DEST"
gzip -c "$(ls -t target/release/deps/model_gpu-* | grep -v '\.d$' | head -1)" > "$DEST/model_gpu.gz"
gzip -c target/release/examples/wgpu_products_engine > "$DEST/wpe.gz"
ls "$DEST"/gl/*.deb > /dev/null 2>&1 || bash benches/gl-debs.sh "$DEST/gl"
cp "$(dirname "$0")/closing.sh" benches/wgpu-h200/s22/call2.sh "$DEST/"
du -sh "$DEST"
