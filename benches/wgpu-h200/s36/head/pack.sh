#!/bin/bash
# Fills the carry folder of this folder's call scripts (session 36, branch s36-head): the release
# wgpu_products_engine and wgpu_decode_bench (gzipped; from BIN: copy them out of the shared target
# right after the build), the Vulkan loader debs (benches/gl-debs.sh) and the call scripts.
#   CARGO_TARGET_DIR=/work/main/target cargo build --release --example wgpu_products_engine --example wgpu_decode_bench
#   BIN=/tmp/s36-head-bin bash benches/wgpu-h200/s36/head/pack.sh /work/main/.dev-s36-head
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
carry=${1:-/work/main/.dev-s36-head}
bin=${BIN:?BIN must name the folder holding wgpu_products_engine and wgpu_decode_bench}
mkdir -p "$carry"
gzip -c "$bin/wgpu_products_engine" > "$carry/wpe.gz"
gzip -c "$bin/wgpu_decode_bench" > "$carry/wdb.gz"
ls "$carry"/gl/*.deb > /dev/null 2>&1 || bash "$repo/benches/gl-debs.sh" "$carry/gl"
cp "$here"/call*.sh "$carry/"
du -sh "$carry"
