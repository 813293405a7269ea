#!/bin/bash
# Fills the carry folder of closing.sh on the build machine: wpe-new (this checkout's
# release examples/wgpu_products_engine), wpe-old (a given binary: session 15's main
# 893156f), the release test binaries of tests/model_gpu.rs and tests/cuda_engine.rs,
# gzipped, the script, and gl/ with the Vulkan loader and GL-dispatch debs.
#   cargo build --release --example wgpu_products_engine --bin moa
#   cargo test --release --no-run --test model_gpu --test cuda_engine
#   bash benches/lead-h200/s16/pack-closing.sh .dev-s16-lead OLD_MOA
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
carry=$1 oldmoa=$2
mkdir -p "$carry/gl"
gzip -c "$repo/target/release/examples/wgpu_products_engine" > "$carry/wpe-new.gz"
gzip -c "$repo/target/release/moa" > "$carry/moa-new.gz"
gzip -c "$oldmoa" > "$carry/moa-old.gz"
for t in model_gpu cuda_engine; do
  bin=$(ls -t "$repo"/target/release/deps/$t-* | grep -v '\.d$' | head -1)
  gzip -c "$bin" > "$carry/$t.gz"
done
cp "$here/closing.sh" "$carry/"
bash "$repo/benches/gl-debs.sh" "$carry/gl"
du -sh "$carry"
