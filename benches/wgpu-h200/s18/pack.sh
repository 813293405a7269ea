#!/bin/bash
# Fills the carry folder of benches/wgpu-h200/s18/call*.sh (branch s18-wgpu): the release
# wgpu_products_engine, wgpu_decode_bench and tests/model_gpu.rs of this branch (gzipped),
# the Vulkan loader debs (GL_FROM, a folder of them, else benches/gl-debs.sh) and the call
# scripts.
#   cargo build --release --example wgpu_products_engine --example wgpu_decode_bench
#   cargo test --release --test model_gpu --no-run
#   bash benches/wgpu-h200/s18/pack.sh /work/main/.dev-s18-wgpu
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
carry=${1:-$repo/.dev-s18-wgpu}
mkdir -p "$carry"
gzip -c "$repo/target/release/examples/wgpu_products_engine" > "$carry/wpe.gz"
gzip -c "$repo/target/release/examples/wgpu_decode_bench" > "$carry/wdb.gz"
mg=$(ls -t "$repo"/target/release/deps/model_gpu-* | grep -v '\.d$' | head -1)
gzip -c "$mg" > "$carry/mg.gz"
if ! ls "$carry"/gl/*.deb > /dev/null 2>&1; then
  if [ -n "${GL_FROM:-}" ]; then mkdir -p "$carry/gl" && cp "$GL_FROM"/*.deb "$carry/gl/"
  else bash "$repo/benches/gl-debs.sh" "$carry/gl"; fi
fi
cp "$here"/call*.sh "$carry/"
du -sh "$carry"
