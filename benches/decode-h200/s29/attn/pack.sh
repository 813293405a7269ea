#!/bin/bash
# Fills the carry folder of benches/decode-h200/s29/attn/call1.sh (branch s29-attn, session 29):
# the release wgpu_products_engine and wgpu_decode_bench of this branch (gzipped; from BIN:
# copy them out of the shared target right after the build, other worktrees build into it),
# the Vulkan loader debs (benches/gl-debs.sh) and the call script.
#   CARGO_TARGET_DIR=/work/main/target cargo build --release --example wgpu_products_engine --example wgpu_decode_bench
#   BIN=/tmp/s29-attn-bin bash benches/decode-h200/s29/attn/pack.sh /work/main/.dev-s29-attn
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
carry=${1:-/work/main/.dev-s29-attn}
bin=${BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/examples}
mkdir -p "$carry"
gzip -c "$bin/wgpu_products_engine" > "$carry/wpe.gz"
gzip -c "$bin/wgpu_decode_bench" > "$carry/wdb.gz"
# call2.sh's decode bench (the branch's head: `lists`, MOA_WGSL_ITEMS), where BIN2 names it.
[ -z "${BIN2:-}" ] || gzip -c "$BIN2" > "$carry/wdb2.gz"
ls "$carry"/gl/*.deb > /dev/null 2>&1 || bash "$repo/benches/gl-debs.sh" "$carry/gl"
cp "$here"/call*.sh "$carry/"
du -sh "$carry"
