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
if ls "$repo"/.gl/*.deb > /dev/null 2>&1; then
  cp "$repo"/.gl/*.deb "$carry/gl/"
else
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  apt-get $o update > /dev/null
  (cd "$carry/gl" && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh "$carry"
