#!/bin/bash
# Fills the carry folder DEST (e.g. .dev-s21-lead) for next-checks.sh from this checkout's
# release build: cuda_check, tests/model_gpu.rs, wgpu_products_engine, wgpu_decode_bench
# (gzipped), cubins of Llama-3-8B and Vicuna-7B in bf16 with main's defaults (cuda_cubins,
# NVRTC here: `eval "$(scripts/cuda-deps.sh)"` first; ~1-4 min on 2 cores) and the Vulkan
# .debs (benches/gl-debs.sh).
#   cargo build --release --example cuda_check --example cuda_cubins \
#       --example wgpu_products_engine --example wgpu_decode_bench
#   cargo test --release --test model_gpu --no-run
#   bash benches/lead-h200/s20/pack-next.sh .dev-s21-lead
set -e
DEST=$1; mkdir -p "$DEST"
gzip -c target/release/examples/cuda_check > "$DEST/cuda_check.gz"
gzip -c target/release/examples/wgpu_products_engine > "$DEST/wpe.gz"
gzip -c target/release/examples/wgpu_decode_bench > "$DEST/wdb.gz"
gzip -c "$(ls -t target/release/deps/model_gpu-* | grep -v '\.d$' | head -1)" > "$DEST/model_gpu.gz"
CUB=$(mktemp -d)
target/release/examples/cuda_cubins --out "$CUB" --dtypes bf16 \
    --upstream l:8:tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json \
    --upstream v:32:tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
tar cJf "$DEST/cubins.tar.xz" -C "$CUB" .
bash benches/gl-debs.sh "$DEST/gl"
cp "$(dirname "$0")/next-checks.sh" "$DEST/"
du -sh "$DEST"
