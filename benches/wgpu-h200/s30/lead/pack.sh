#!/bin/bash
# Fills the carry folder DEST (/work/main/.dev-lead) of call.sh from BIN (binaries copied
# right after the merged main's release build: wgpu_products_engine, model_gpu).
#   bash benches/wgpu-h200/s30/lead/pack.sh /work/main/.dev-lead /tmp/lead-bin
set -e
DEST=$1; BIN=$2; mkdir -p "$DEST"; rm -f "$DEST"/*.gz
for b in wgpu_products_engine:wpe model_gpu:model_gpu; do
  IFS=: read -r f n <<< "$b"
  [ "$(strings "$BIN/$f" | grep -c MOA_WGPU_NORM_F16)" -ge 1 ] && [ "$(strings "$BIN/$f" | grep -c 'the pipeline build panicked')" -ge 1 ] \
    || { echo "$f is not the merged main's"; exit 1; }
  gzip -c "$BIN/$f" > "$DEST/$n.gz"
done
mkdir -p "$DEST/gl"; ls "$DEST"/gl/*.deb > /dev/null 2>&1 || cp /work/main/.gl/*.deb "$DEST/gl/"
cp "$(dirname "$0")"/call.sh "$DEST/"; du -sh "$DEST"
