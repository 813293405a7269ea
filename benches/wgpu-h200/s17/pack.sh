#!/bin/bash
# Fills the carry folder of benches/wgpu-h200/s17/call*.sh (branch s17-wgpu): the release
# wgpu_products_engine, wgpu_decode_bench and tests/model_gpu.rs of this branch (gzipped),
# the Vulkan loader debs (benches/gl-debs.sh) and the call scripts.
#   cargo build --release --example wgpu_products_engine --example wgpu_decode_bench
#   cargo test --release --test model_gpu --no-run
#   bash benches/wgpu-h200/s17/pack.sh /work/main/.dev-s17-wgpu
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
carry=${1:-$repo/.dev-s17-wgpu}
mkdir -p "$carry"
gzip -c "$repo/target/release/examples/wgpu_products_engine" > "$carry/wpe.gz"
gzip -c "$repo/target/release/examples/wgpu_decode_bench" > "$carry/wdb.gz"
mg=$(ls -t "$repo"/target/release/deps/model_gpu-* | grep -v '\.d$' | head -1)
gzip -c "$mg" > "$carry/mg.gz"
ls "$carry"/gl/*.deb > /dev/null 2>&1 || bash "$repo/benches/gl-debs.sh" "$carry/gl"
cp "$here"/call*.sh "$carry/"
du -sh "$carry"
