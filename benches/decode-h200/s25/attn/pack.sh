#!/bin/bash
# Fills the carry folder of benches/decode-h200/s25/attn/call1.sh (branch s25-attn): the release
# wgpu_products_engine and wgpu_decode_bench of this branch (gzipped), the Vulkan loader
# debs (benches/gl-debs.sh) and the call script.
#   cargo build --release --example wgpu_products_engine --example wgpu_decode_bench
#   bash benches/decode-h200/s25/attn/pack.sh /work/main/.dev-s25-attn
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
carry=${1:-$repo/.dev-s25-attn}
mkdir -p "$carry"
gzip -c "$repo/target/release/examples/wgpu_products_engine" > "$carry/wpe.gz"
gzip -c "$repo/target/release/examples/wgpu_decode_bench" > "$carry/wdb.gz"
ls "$carry"/gl/*.deb > /dev/null 2>&1 || bash "$repo/benches/gl-debs.sh" "$carry/gl"
cp "$here"/call*.sh "$carry/"
du -sh "$carry"
