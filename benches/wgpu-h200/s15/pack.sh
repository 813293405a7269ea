#!/bin/bash
# Fills the carry folder of call1.sh: DEST (e.g. /work/main/.dev-s15-wgpu) gets the
# scripts, the Vulkan debs (benches/gl-debs.sh), this branch's release model_gpu test
# binary (cargo test --release --test model_gpu --no-run) and the lead's model_gpu and
# wgpu_products_engine of main fed77e2 from LEAD (default /work/main/.dev-s15-lead).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
dest=$1; lead=${2:-/work/main/.dev-s15-lead}
mkdir -p "$dest"
cp "$here"/call1.sh "$dest/"
bash "$repo"/benches/gl-debs.sh "$dest/gl"
bin=$(ls -t "$repo"/target/release/deps/model_gpu-* | grep -v '\.d$' | head -1)
gzip -c "$bin" > "$dest/model_gpu-new.gz"
cp "$lead/model_gpu.gz" "$dest/model_gpu-old.gz"
cp "$lead/wpe-new.gz" "$dest/wpe.gz"
ls -la "$dest"
