#!/bin/bash
# Fills the carry folder of benches/decode-h200/s14/call1-wgsl.sh on the build machine:
# the release wgpu_decode_bench gzipped, wgsl_table.py, the call script, and gl/ with the
# Vulkan loader and GL-dispatch debs (copied from the checkout's .gl/ where present, else
# downloaded as .library/device/README.md says).
#   cargo build --release --example wgpu_decode_bench
#   bash benches/decode-h200/s14/pack-wgsl.sh .dev-s15-wgsl
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
carry=$1
mkdir -p "$carry/gl"
gzip -c "$repo/target/release/examples/wgpu_decode_bench" > "$carry/wgpu_decode_bench.gz"
cp "$repo/benches/decode-h200/wgsl_table.py" "$here/call1-wgsl.sh" "$carry/"
bash "$repo/benches/gl-debs.sh" "$carry/gl"
du -sh "$carry"
