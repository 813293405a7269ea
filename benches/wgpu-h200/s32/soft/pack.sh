#!/bin/bash
# Fills the carry folder DEST (/work/main/.dev-s32-soft) of call1.sh from this branch's
# release wgpu_products_engine, wgpu_decode_bench and model_gpu test binary (copied to BIN
# right after their build: other worktrees' builds overwrite target/release), gzipped, the
# call script and the Vulkan loader .debs (from GL, default /work/main/.gl).
#   touch src/lib.rs $(git diff --name-only main -- src)   # the shared target's fingerprint
#   CARGO_TARGET_DIR=/work/main/target cargo build --release --example wgpu_products_engine --example wgpu_decode_bench
#   cp /work/main/target/release/examples/{wgpu_products_engine,wgpu_decode_bench} BIN/   # at once
#   CARGO_TARGET_DIR=/work/main/target cargo test --release --test model_gpu --no-run; cp its binary BIN/model_gpu
#   bash benches/wgpu-h200/s32/soft/pack.sh /work/main/.dev-s32-soft /tmp/s32-soft-bin
set -e
DEST=$1; BIN=$2; mkdir -p "$DEST"
gzip -c "$BIN/wgpu_products_engine" > "$DEST/wpe.gz"
gzip -c "$BIN/wgpu_decode_bench" > "$DEST/wdb.gz"
gzip -c "$BIN/model_gpu" > "$DEST/model_gpu.gz"
mkdir -p "$DEST/gl"; ls "$DEST"/gl/*.deb > /dev/null 2>&1 || cp "${GL:-/work/main/.gl}"/*.deb "$DEST/gl/" || bash benches/gl-debs.sh "$DEST/gl"
cp "$(dirname "$0")"/call*.sh "$DEST/"
du -sh "$DEST"
