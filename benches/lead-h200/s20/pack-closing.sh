#!/bin/bash
# Fills the carry folder DEST (.dev-s20-close) of closing.sh: merged main's release
# model_gpu test binary, wgpu_products_engine and wgpu_decode_bench (wpe, wdb), the same
# two of a base checkout BASE (wpe0, wdb0; a worktree of 6da2536 built alike), the debs.
#   cargo build --release --example wgpu_products_engine --example wgpu_decode_bench
#   cargo test --release --test model_gpu --no-run
#   bash benches/lead-h200/s20/pack-closing.sh .dev-s20-close /work/wt-base
set -e
DEST=$1; BASE=$2; mkdir -p "$DEST"
gzip -c "$(ls -t target/release/deps/model_gpu-* | grep -v '\.d$' | head -1)" > "$DEST/model_gpu.gz"
gzip -c target/release/examples/wgpu_products_engine > "$DEST/wpe.gz"
gzip -c target/release/examples/wgpu_decode_bench > "$DEST/wdb.gz"
gzip -c "$BASE/target/release/examples/wgpu_products_engine" > "$DEST/wpe0.gz"
gzip -c "$BASE/target/release/examples/wgpu_decode_bench" > "$DEST/wdb0.gz"
ls "$DEST"/gl/*.deb > /dev/null 2>&1 || cp -r .dev-s20-lead/gl "$DEST/gl" 2>/dev/null || bash benches/gl-debs.sh "$DEST/gl"
cp "$(dirname "$0")/closing.sh" "$DEST/"
du -sh "$DEST"
