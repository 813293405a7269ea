#!/bin/bash
# Fill the lead's carry folder for closing.sh: DEST (e.g. .dev-s18-lead) gets merged main's
# release cuda_check, tests/cuda_engine.rs and tests/model_gpu.rs (gzipped), the cubins
# of CUB (cuda_cubins --dtypes bf16|f16 --upstream l:8:<Llama-3-8B plan>, and fixture-gqa),
# the Vulkan .debs from GL (benches/gl-debs.sh's folder) and closing.sh.
set -e
DEST=$1; CUB=$2; GL=$3
mkdir -p "$DEST"
gzip -c target/release/examples/cuda_check > "$DEST/cuda_check.gz"
for t in cuda_engine model_gpu; do
  B=$(ls -t target/release/deps/$t-* | grep -v '\.d$' | head -1)
  gzip -c "$B" > "$DEST/$t.gz"
done
tar cJf "$DEST/cubins.tar.xz" -C "$CUB" .
cp -a "$GL" "$DEST/gl"
cp "$(dirname "$0")/closing.sh" "$DEST/"
du -sh "$DEST"
