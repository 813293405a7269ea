#!/bin/bash
# Fills the carry folder of benches/wgpu-h200/s16/call1.sh: the release
# wgpu_products_engine and tests/model_gpu.rs binaries of this branch (gzipped), the
# call script, and gl/ with the Vulkan loader and GL-dispatch debs.
#   cargo build --release --example wgpu_products_engine
#   cargo test --release --test model_gpu --no-run
#   bash benches/wgpu-h200/s16/pack.sh /work/main/.dev-s16-wgpu
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
carry=${1:-$repo/.dev-s16-wgpu}
mkdir -p "$carry/gl"
gzip -c "$repo/target/release/examples/wgpu_products_engine" > "$carry/wpe.gz"
t=$(ls -t "$repo"/target/release/deps/model_gpu-* 2>/dev/null | grep -v '\.d$' | head -1 || true)
[ -n "$t" ] && gzip -c "$t" > "$carry/model_gpu.gz"
cp "$here"/call*.sh "$carry/"
bash "$repo/benches/gl-debs.sh" "$carry/gl"
du -sh "$carry"
