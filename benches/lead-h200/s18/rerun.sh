#!/bin/bash
# The swiglu test alone (3 times, one thread), then beside the rest at 2 threads once.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=$OUT/r; mkdir -p $R
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
cd $D; gunzip -f model_gpu.gz; chmod +x model_gpu
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
cd $ROOT
for i in 1 2 3; do timeout 40 $D/model_gpu --test-threads 1 swiglu 2>&1 | grep -E "^test |panicked|err" | head -3; done
timeout 60 $D/model_gpu --test-threads 2 swiglu subgroup_products 2>&1 | grep -E "^test |panicked|err" | head -8
