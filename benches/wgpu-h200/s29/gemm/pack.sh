#!/bin/bash
# Fills the carry folder DEST (/work/main/.dev-s29-gemm) of call1.sh: the old (A: main
# 5f17848) and new (B: s29-gemm) release wgpu_products_engine / wgpu_products, gzipped,
# s29-gemm's release model_gpu test binary, the call script and the Vulkan loader .debs.
#   old: cp target/release/examples/wgpu_products{,_engine} /tmp/s29-gemm-bin-old/ (built
#     at main 5f17848 before the session's helpers built)
#   new: cargo build --release --example wgpu_products --example wgpu_products_engine;
#     cargo test --release --test model_gpu --no-run; copied to /tmp/s29-gemm-bin/
#   bash benches/wgpu-h200/s29/gemm/pack.sh /work/main/.dev-s29-gemm /tmp/s29-gemm-bin-old /tmp/s29-gemm-bin
#   call 2 (prepared for the lead): pack.sh DEST - /tmp/s29-gemm-bin 2 (model_gpu.gz, wpe3.gz,
#   the call scripts and the debs: NEW/model_gpu3, the test binary rebuilt at the RoPE
#   option's commit, and NEW/wpe3, its wgpu_products_engine; check both with
#   `strings B | grep -c 'override RT\|override SWIGLU'` before packing)
set -e
DEST=$1; OLD=$2; NEW=$3; mkdir -p "$DEST"
if [ "$4" = 2 ]; then
  rm -f "$DEST"/wpe?.gz "$DEST"/wp?.gz
  gzip -c "$NEW/model_gpu3" > "$DEST/model_gpu.gz"
  gzip -c "$NEW/wpe3" > "$DEST/wpe3.gz"
  mkdir -p "$DEST/gl"; ls "$DEST"/gl/*.deb > /dev/null 2>&1 || cp /work/main/.gl/*.deb "$DEST/gl/"
  cp "$(dirname "$0")"/call*.sh "$DEST/"; du -sh "$DEST"; exit 0
fi
gzip -c "$OLD/wgpu_products_engine" > "$DEST/wpeA.gz"
# wpA (the old bench) left out: the checkout (43 MB) and the carry must fit 64 MiB.
gzip -c "$NEW/wgpu_products_engine" > "$DEST/wpeB.gz"
gzip -c "$NEW/wgpu_products" > "$DEST/wpB.gz"
gzip -c "$NEW/model_gpu" > "$DEST/model_gpu.gz"
mkdir -p "$DEST/gl"; ls "$DEST"/gl/*.deb > /dev/null 2>&1 || cp /work/main/.gl/*.deb "$DEST/gl/" 2>/dev/null \
  || bash benches/gl-debs.sh "$DEST/gl"
cp "$(dirname "$0")"/call*.sh "$DEST/"
du -sh "$DEST"
