#!/bin/bash
# Fills the carry folder DEST (/work/main/.dev-s23-gateup) of call1.sh from this checkout's
# release build: wgpu_products_engine (wpe) and tests/model_gpu.rs, gzipped, call1.sh and
# the Vulkan loader .debs.
#   cargo build --release --example wgpu_products_engine --example wgpu_decode_bench
#   cargo test --release --test model_gpu --no-run
#   bash benches/wgpu-h200/s23/pack.sh /work/main/.dev-s23-gateup
set -e
DEST=$1; mkdir -p "$DEST"
gzip -c "$(ls -t target/release/deps/model_gpu-* | grep -v '\.d$' | head -1)" > "$DEST/model_gpu.gz"
gzip -c target/release/examples/wgpu_products_engine > "$DEST/wpe.gz"
ls "$DEST"/gl/*.deb > /dev/null 2>&1 || bash benches/gl-debs.sh "$DEST/gl"
gzip -c target/release/examples/wgpu_decode_bench > "$DEST/wdb.gz"
cp "$(dirname "$0")"/call*.sh "$DEST/"
du -sh "$DEST"
