#!/bin/bash
# Fills the carry folder DEST (/work/main/.dev-s28-gemm) of call1.sh / call2.sh from
# release binaries of branch s28-gemm (copied to BIN right after their builds: other
# worktrees' builds overwrite target/release/examples), gzipped, the call scripts and the
# Vulkan loader .debs.
#   call 1 (0deeeb6): cargo build --release --example wgpu_products \
#     --example wgpu_products_engine --example wgpu_decode_bench
#   cp target/release/examples/wgpu_{products,products_engine,decode_bench} /tmp/s28-gemm-bin/
#   bash benches/wgpu-h200/s28/gemm/pack.sh /work/main/.dev-s28-gemm /tmp/s28-gemm-bin
#   call 2 (0a30565): the same build without wgpu_decode_bench, copied to
#   /tmp/s28-gemm-bin2, then pack.sh DEST /tmp/s28-gemm-bin2 2 (wp2.gz, wpe2.gz)
set -e
DEST=$1; BIN=${2:-target/release/examples}; SUF=$3; mkdir -p "$DEST"
gzip -c "$BIN/wgpu_products" > "$DEST/wp$SUF.gz"
gzip -c "$BIN/wgpu_products_engine" > "$DEST/wpe$SUF.gz"
[ -f "$BIN/wgpu_decode_bench" ] && gzip -c "$BIN/wgpu_decode_bench" > "$DEST/wdb$SUF.gz"
mkdir -p "$DEST/gl"; ls "$DEST"/gl/*.deb > /dev/null 2>&1 || cp /work/main/.gl/*.deb "$DEST/gl/" 2>/dev/null \
  || bash benches/gl-debs.sh "$DEST/gl"
cp "$(dirname "$0")"/call*.sh "$DEST/"
du -sh "$DEST"
