#!/bin/bash
# Fills the carry folder DEST (.dev-s21-close) of closing.sh from this checkout's release
# build: tests/model_gpu.rs, wgpu_products_engine (wpe), wgpu_decode_bench (wdb), gzipped,
# and the Vulkan loader .debs.
#   cargo build --release --example wgpu_products_engine --example wgpu_decode_bench
#   cargo test --release --test model_gpu --no-run
#   bash benches/lead-h200/s21/pack-closing.sh .dev-s21-close
set -e
DEST=$1; mkdir -p "$DEST"
gzip -c "$(ls -t target/release/deps/model_gpu-* | grep -v '\.d$' | head -1)" > "$DEST/model_gpu.gz"
gzip -c target/release/examples/wgpu_products_engine > "$DEST/wpe.gz"
gzip -c target/release/examples/wgpu_decode_bench > "$DEST/wdb.gz"
ls "$DEST"/gl/*.deb > /dev/null 2>&1 || bash benches/gl-debs.sh "$DEST/gl"
cp "$(dirname "$0")/closing.sh" "$DEST/"
du -sh "$DEST"
