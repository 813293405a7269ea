#!/bin/bash
# Fills the carry folder of benches/wgpu-h200/s16/call3.sh (branch s16-wgpu2): the release
# wgpu_products_engine of this branch (gzipped) and the call script. No Vulkan debs (the
# closing call that runs it carries its own; call3.sh unpacks gl/ debs only where the
# loader is missing) and no test binary (the engine bench's --parity checks each form).
#   cargo build --release --example wgpu_products_engine
#   bash benches/wgpu-h200/s16/pack3.sh /work/main/.dev-s16-wgpu2
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
carry=${1:-$repo/.dev-s16-wgpu2}
mkdir -p "$carry"
gzip -c "$repo/target/release/examples/wgpu_products_engine" > "$carry/wpe.gz"
cp "$here/call3.sh" "$carry/"
du -sh "$carry"
