#!/bin/bash
# Fills the carry folder DEST (/work/main/.dev-s28-pattn) of call1.sh from this branch's
# release builds (copied to BIN right after each build: other worktrees' builds overwrite
# target/release), gzipped, the call scripts, hf_prefill.py + hf_decode.py (its shapes) and
# the Vulkan loader .debs.
#   cargo build --release --example wgpu_products_engine; cp target/release/examples/wgpu_products_engine BIN/
#   cargo test --release --test model_gpu --no-run; cp target/release/deps/model_gpu-HASH BIN/model_gpu
#   bash benches/wgpu-h200/s28/pattn/pack.sh /work/main/.dev-s28-pattn /tmp/s28-pattn-bin
set -e
DEST=$1; BIN=$2; mkdir -p "$DEST"
gzip -c "$BIN/model_gpu" > "$DEST/model_gpu.gz"
gzip -c "$BIN/wgpu_products_engine" > "$DEST/wpe.gz"
ls "$DEST"/gl/*.deb > /dev/null 2>&1 || bash benches/gl-debs.sh "$DEST/gl"
cp "$(dirname "$0")"/call*.sh "$DEST/"
cp benches/peers/hf_prefill.py benches/peers/hf_decode.py "$DEST/"
du -sh "$DEST"
