#!/bin/bash
# Fills the carry folder of benches/decode-h200/s27/attn/call1.sh (branch s27-attn): the release
# wgpu_products_engine and wgpu_decode_bench of this branch (gzipped; from BIN, default the
# shared target's examples folder: copy them out right after the build, other worktrees build
# into the same target), the Vulkan loader debs (benches/gl-debs.sh) and the call script.
#   CARGO_TARGET_DIR=/work/main/target cargo build --release --example wgpu_products_engine --example wgpu_decode_bench
#   bash benches/decode-h200/s27/attn/pack.sh /work/main/.dev-s27-attn
#   (call 2: DIAG=/tmp/s27-attn-bin/wpe-diag, the release wgpu_products_engine of 5436e70)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
carry=${1:-/work/main/.dev-s27-attn}
bin=${BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/examples}
mkdir -p "$carry"
gzip -c "$bin/wgpu_products_engine" > "$carry/wpe.gz"
gzip -c "$bin/wgpu_decode_bench" > "$carry/wdb.gz"
# call2.sh runs a second wgpu_products_engine (the diagnostics' build, 5436e70) given as DIAG.
if [ -n "${DIAG:-}" ]; then gzip -c "$DIAG" > "$carry/wpe-diag.gz"; fi
ls "$carry"/gl/*.deb > /dev/null 2>&1 || bash "$repo/benches/gl-debs.sh" "$carry/gl"
cp "$here"/call*.sh "$carry/"
du -sh "$carry"
