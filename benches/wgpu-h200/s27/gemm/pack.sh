#!/bin/bash
# Fills the carry folder DEST (/work/main/.dev-s27-gemm) of call1.sh from release binaries
# of branch s27-gemm (copied to BIN right after their builds: other worktrees' builds
# overwrite target/release/examples), gzipped, call1.sh, hf_prefill.py + hf_decode.py and
# the Vulkan loader .debs.
#   cargo build --release --example wgpu_products --example wgpu_products_engine \
#     --example wgpu_decode_bench (call 2's regs-gemm)
#   cp target/release/examples/wgpu_{products,products_engine,decode_bench} /tmp/s27-gemm-bin/
#   bash benches/wgpu-h200/s27/gemm/pack.sh /work/main/.dev-s27-gemm /tmp/s27-gemm-bin [OLD]
# (call 3: BIN = this head's build, OLD = call 1's wgpu_products_engine, the A of its A/B)
set -e
DEST=$1; BIN=${2:-target/release/examples}; OLD=$3; mkdir -p "$DEST"
gzip -c "$BIN/wgpu_products" > "$DEST/wp.gz"
gzip -c "$BIN/wgpu_products_engine" > "$DEST/wpe.gz"
[ -f "$BIN/wgpu_decode_bench" ] && gzip -c "$BIN/wgpu_decode_bench" > "$DEST/wdb.gz"
[ -n "$OLD" ] && gzip -c "$OLD" > "$DEST/wpe_old.gz"
ls "$DEST"/gl/*.deb > /dev/null 2>&1 || bash benches/gl-debs.sh "$DEST/gl"
cp "$(dirname "$0")"/call*.sh "$DEST/"
cp benches/peers/hf_prefill.py benches/peers/hf_decode.py "$DEST/"
du -sh "$DEST"
