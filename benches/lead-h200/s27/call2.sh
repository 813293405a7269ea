#!/bin/bash
# Lead call 2 of session 27, PREPARED, NOT RUN (the device refused: too little time left to start a machine). Merged main's
# release wgpu_products_engine (df4d6da: s27-gemm's products by default) with the group
# form's passing variant (MOA_WGPU_COOP_ATTN_GROUP=2), SmolLM2 shape, 16 x 4096, moa-50,
# --profile-prefill: the two prefill changes together, one process.
#   run tool: "bash benches/lead-h200/s27/call2.sh", carry [".dev-s27-lead2"] (wpe.gz, gl/)
# Prediction: the check passes (4.9e-4); pass ~ 150 (products) + 194 (attention) + ~5 ms
# ~ 350 ms; prefill ~ 80-90k tok/s.
D=.dev-s27-lead2
gunzip -c $D/wpe.gz > /tmp/wpe && chmod +x /tmp/wpe
ldconfig -p | grep -q libvulkan.so.1 || { for f in $D/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
MOA_WGPU_COOP_ATTN_GROUP=2 timeout 50 /tmp/wpe --like smollm2-135m --rows 16 --prompt 4096 --new 2 \
  --profile-prefill --plan plans/smollm2-135m-moa-50.toml --parity 24 > $OUT/g2.txt 2>&1
echo rc=$? >> $OUT/g2.txt
grep -E "prefill attention|tok/s|max .logit err|dispatches, " $OUT/g2.txt | cut -c1-300
