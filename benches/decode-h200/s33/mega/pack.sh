#!/bin/bash
# Fills the carry folder of call1.sh (branch s33-mega, session 33): the release
# wgpu_products_engine of this branch (gzipped; from BIN: copy it out of the shared target right
# after the build, other worktrees build into it), the Vulkan loader debs (benches/gl-debs.sh)
# and the call scripts. The carry folder must sit in the checkout the device tool sends.
#   CARGO_TARGET_DIR=/work/main/target cargo build --release --example wgpu_products_engine
#   BIN=/tmp/s33-mega-bin bash benches/decode-h200/s33/mega/pack.sh /work/main/.dev-s33-mega
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
carry=${1:-/work/main/.dev-s33-mega}
bin=${BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/examples}
mkdir -p "$carry"
f=$bin/wpe; [ -f "$f" ] || f=$bin/wgpu_products_engine
grep -a -q MOA_WGPU_DECODE_FUSED_DOWN "$f" || { echo "$f lacks MOA_WGPU_DECODE_FUSED_DOWN"; exit 1; }
gzip -c "$f" > "$carry/wpe.gz"
ls "$carry"/gl/*.deb > /dev/null 2>&1 || bash "$repo/benches/gl-debs.sh" "$carry/gl"
cp "$here"/call*.sh "$carry/"
du -sh "$carry"
