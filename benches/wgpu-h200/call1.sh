#!/bin/bash
# Device call 1 of 2 (s6-wgpu): Vulkan loader, the moa binary and the GGUF's first part
# into /tmp/s6w (kept for call 2 on the warm machine), then examples/wgpu_products:
# cooperative-matrix configurations, the chosen products, parity against the CPU
# reference, prefill/decode with matrix-unit vs tiled products.
A=$PWD/.dev-s6-wgpu; W=/tmp/s6w
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
mkdir -p $W; cp -r $A/gl $A/part1 $A/gguf.sha256 $A/*.toml $A/*.py $W/
gunzip -c $A/moa.gz > $W/moa; gunzip -c $A/products.gz > $W/products; chmod +x $W/moa $W/products
for f in $W/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
el setup; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
RUST_BACKTRACE=1 timeout 65 $W/products 16 1024 2>&1 | grep -v XDG | tee $OUT/products.txt
el "products rc=${PIPESTATUS[0]}"
