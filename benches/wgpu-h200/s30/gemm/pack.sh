#!/bin/bash
# Fills the carry folder DEST (/work/main/.dev-s30-gemm) of call1.sh: s30-gemm's release
# wgpu_products (wp), wgpu_products_engine (wpe) and model_gpu test binary, gzipped, from
# BIN (/tmp/s30-gemm-bin, copied right after their build in a private target folder,
# `cp -al /work/main/target/release /tmp/s30-gemm-target/` then
# `CARGO_TARGET_DIR=/tmp/s30-gemm-target cargo build --release --example wgpu_products
# --example wgpu_products_engine --test model_gpu`: the shared target's moa library had
# been rebuilt by another worktree twice), each checked to carry the change; pick.py, the
# call script and the Vulkan loader .debs.
#   bash benches/wgpu-h200/s30/gemm/pack.sh /work/main/.dev-s30-gemm /tmp/s30-gemm-bin
#   call 2 (prepared for the lead): pack.sh DEST BIN 2 (wpe.gz, model_gpu.gz of the
#   MOA_WGPU_NORM_F16 commit, each checked to name it; call2.sh; the debs)
set -e
DEST=$1; BIN=$2; mkdir -p "$DEST"
if [ "$3" = 2 ]; then
  rm -f "$DEST"/*.gz "$DEST"/call1.sh "$DEST"/pick.py
  for b in wgpu_products_engine:wpe model_gpu:model_gpu; do
    IFS=: read -r f n <<< "$b"
    [ "$(strings "$BIN/$f" | grep -c MOA_WGPU_NORM_F16)" -ge 1 ] || { echo "$f lacks the change"; exit 1; }
    gzip -c "$BIN/$f" > "$DEST/$n.gz"
  done
  mkdir -p "$DEST/gl"; ls "$DEST"/gl/*.deb > /dev/null 2>&1 || cp /work/main/.gl/*.deb "$DEST/gl/"
  cp "$(dirname "$0")"/call2.sh "$DEST/"; du -sh "$DEST"; exit 0
fi
for b in wgpu_products:wp wgpu_products_engine:wpe model_gpu:model_gpu; do
  IFS=: read -r f n <<< "$b"
  [ "$(strings "$BIN/$f" | grep -c piece_h8_2)" -ge 1 ] || { echo "$f lacks the change"; exit 1; }
  gzip -c "$BIN/$f" > "$DEST/$n.gz"
done
mkdir -p "$DEST/gl"; ls "$DEST"/gl/*.deb > /dev/null 2>&1 || cp /work/main/.gl/*.deb "$DEST/gl/" 2>/dev/null \
  || bash benches/gl-debs.sh "$DEST/gl"
cp "$(dirname "$0")"/call1.sh "$(dirname "$0")"/pick.py "$DEST/"
du -sh "$DEST"
