#!/bin/bash
# Fills the carry folder of benches/lead-h200/s14/lead-call.sh on the build machine:
# wpe-new (this checkout's release examples/wgpu_products_engine), wpe-old (a given
# binary, e.g. session 13's main 62d2be4 built in a worktree), the release test binaries
# of tests/model_gpu.rs and tests/cuda_engine.rs, gzipped, the script, and gl/ with the
# Vulkan loader and GL-dispatch debs.
#   cargo build --release --example wgpu_products_engine
#   cargo test --release --no-run --test model_gpu --test cuda_engine
#   bash benches/lead-h200/s14/pack-lead.sh .dev-s15-lead /path/to/old/wgpu_products_engine
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
carry=$1 old=$2
mkdir -p "$carry/gl"
gzip -c "$repo/target/release/examples/wgpu_products_engine" > "$carry/wpe-new.gz"
gzip -c "$old" > "$carry/wpe-old.gz"
for t in model_gpu cuda_engine; do
  bin=$(ls -t "$repo"/target/release/deps/$t-* | grep -v '\.d$' | head -1)
  gzip -c "$bin" > "$carry/$t.gz"
done
cp "$here/lead-call.sh" "$carry/"
bash "$repo/benches/gl-debs.sh" "$carry/gl"
du -sh "$carry"
