#!/bin/bash
# Fills the carry folder of call*.sh (branch s34-fuse, session 34): the release
# wgpu_products_engine and wgpu_decode_bench of this branch (gzipped; from BIN: copy them out
# of the shared target right after the build, other worktrees build into it), the Vulkan
# loader debs (benches/gl-debs.sh) and the call scripts. The carry folder must sit in the
# checkout the device tool sends.
#   CARGO_TARGET_DIR=/work/main/target cargo build --release --example wgpu_products_engine --example wgpu_decode_bench
#   BIN=/tmp/s34-fuse-bin bash benches/decode-h200/s34/fuse/pack.sh /work/main/.dev-s34-fuse
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
carry=${1:-/work/main/.dev-s34-fuse}
bin=${BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/examples}
mkdir -p "$carry"
f=$bin/wpe; [ -f "$f" ] || f=$bin/wgpu_products_engine
grep -a -q MOA_WGPU_COOP_DECODE_UNCHECKED "$f" || { echo "$f lacks MOA_WGPU_COOP_DECODE_UNCHECKED"; exit 1; }
g=$bin/wdb; [ -f "$g" ] || g=$bin/wgpu_decode_bench
grep -a -q regs-fused "$g" || { echo "$g lacks regs-fused"; exit 1; }
gzip -c "$f" > "$carry/wpe.gz"
gzip -c "$g" > "$carry/wdb.gz"
ls "$carry"/gl/*.deb > /dev/null 2>&1 || bash "$repo/benches/gl-debs.sh" "$carry/gl"
cp "$here"/call*.sh "$carry/"
du -sh "$carry"
