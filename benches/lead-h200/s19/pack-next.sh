#!/bin/bash
# Fills the carry folder DEST (e.g. .dev-s20-lead) for next-checks.sh from this checkout's
# release build: cuda_check, the moa CLI, tests/cuda_engine.rs and tests/model_gpu.rs
# (gzipped), cubins of Llama-3-8B and Vicuna-7B in bf16 with main's defaults (cuda_cubins,
# NVRTC here: `eval "$(scripts/cuda-deps.sh)"` first; several minutes on 2 cores) and the
# Vulkan .debs (benches/gl-debs.sh).
#   cargo build --release --example cuda_check --example cuda_cubins --bin moa
#   cargo test --release --test cuda_engine --test model_gpu --no-run
#   bash benches/lead-h200/s19/pack-next.sh .dev-s20-lead
set -e
DEST=$1; mkdir -p "$DEST"
gzip -c target/release/examples/cuda_check > "$DEST/cuda_check.gz"
gzip -c target/release/moa > "$DEST/moa.gz"
for t in cuda_engine model_gpu; do
  B=$(ls -t target/release/deps/$t-* | grep -v '\.d$' | head -1)
  gzip -c "$B" > "$DEST/$t.gz"
done
CUB=$(mktemp -d)
target/release/examples/cuda_cubins --out "$CUB" --dtypes bf16 \
    --upstream l:8:tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json \
    --upstream v:32:tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
tar cJf "$DEST/cubins.tar.xz" -C "$CUB" .
bash benches/gl-debs.sh "$DEST/gl"   # from the checkout root, as the lines above
cp "$(dirname "$0")/next-checks.sh" "$DEST/"
du -sh "$DEST"
