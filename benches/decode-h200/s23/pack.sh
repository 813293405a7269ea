#!/bin/bash
# Fills the carry folder of benches/decode-h200/s23/call1.sh (branch s23-attn): the release
# wgpu_products_engine, wgpu_decode_bench and tests/model_gpu.rs binary of this branch
# (gzipped), the Vulkan loader debs (benches/gl-debs.sh) and the call script.
#   cargo build --release --example wgpu_products_engine --example wgpu_decode_bench
#   cargo test --release --test model_gpu --no-run
#   bash benches/decode-h200/s23/pack.sh /work/main/.dev-s23-attn
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
carry=${1:-$repo/.dev-s23-attn}
mkdir -p "$carry"
gzip -c "$repo/target/release/examples/wgpu_products_engine" > "$carry/wpe.gz"
gzip -c "$repo/target/release/examples/wgpu_decode_bench" > "$carry/wdb.gz"
t=$(ls -t "$repo"/target/release/deps/model_gpu-* | grep -v '\.d$' | head -1)
gzip -c "$t" > "$carry/model_gpu.gz"
ls "$carry"/gl/*.deb > /dev/null 2>&1 || bash "$repo/benches/gl-debs.sh" "$carry/gl"
cp "$here"/call*.sh "$carry/"
du -sh "$carry"
