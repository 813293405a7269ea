#!/bin/bash
# Fills the carry folder DEST (/work/main/.dev-s28-gemm) of call1.sh from release binaries
# of branch s28-gemm (copied to BIN right after their builds: other worktrees' builds
# overwrite target/release/examples), gzipped, call1.sh and the Vulkan loader .debs.
#   cargo build --release --example wgpu_products --example wgpu_products_engine \
#     --example wgpu_decode_bench
#   cp target/release/examples/wgpu_{products,products_engine,decode_bench} /tmp/s28-gemm-bin/
#   bash benches/wgpu-h200/s28/gemm/pack.sh /work/main/.dev-s28-gemm /tmp/s28-gemm-bin
set -e
DEST=$1; BIN=${2:-target/release/examples}; mkdir -p "$DEST"
gzip -c "$BIN/wgpu_products" > "$DEST/wp.gz"
gzip -c "$BIN/wgpu_products_engine" > "$DEST/wpe.gz"
[ -f "$BIN/wgpu_decode_bench" ] && gzip -c "$BIN/wgpu_decode_bench" > "$DEST/wdb.gz"
ls "$DEST"/gl/*.deb > /dev/null 2>&1 || bash benches/gl-debs.sh "$DEST/gl"
cp "$(dirname "$0")"/call*.sh "$DEST/"
du -sh "$DEST"
