#!/bin/bash
# Fills the carry folder of benches/wgpu-h200/s14/step-ab.sh on the build machine: the
# release wgpu_products_engine gzipped, the call script, and gl/ with the Vulkan loader
# and GL-dispatch debs (copied from the checkout's .gl/ where present, else downloaded as
# .library/device/README.md says).
#   cargo build --release --example wgpu_products_engine
#   bash benches/wgpu-h200/s14/pack-engine.sh .dev-s15-engine
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
carry=${1:-$repo/.dev-s15-engine}
mkdir -p "$carry/gl"
gzip -c "$repo/target/release/examples/wgpu_products_engine" > "$carry/wgpu_products_engine.gz"
cp "$here/step-ab.sh" "$carry/"
bash "$repo/benches/gl-debs.sh" "$carry/gl"
du -sh "$carry"
