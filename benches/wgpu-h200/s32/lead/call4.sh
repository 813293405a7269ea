#!/bin/bash
# Session 32, lead call 4 (one H200 through Vulkan): main 05a21dd (s32-soft's scores in
# registers the default, with moa_sr_key's mapping fallback for SG = 128, which folds to the
# measured mapping at SG = 32).
#   bash .dev-lead32/call4.sh   (carry [".dev-lead32", ".dev-s32-gbar"] (for the loader debs),
#   run tool timeout_s 150)
# 1. tests/model_gpu.rs, the whole file. PREDICTED: 30 passed, 1 ignored, 45-60 s.
# 2. wpe prefill, defaults, moa-50 and dense, --parity 136: PREDICTED attention 37.9-38.5 /
#    52.8-53.0 ms a pass, 234-237k / 209-212k tok/s, parity 0.0503 / 0.0504, 3/3 (s32-soft).
# 3. The parity question s32-soft left (0.0474 -> 0.0503 at 136 tokens): moa-50 at a
#    520-token row (9 key tiles), SCORE_REGS=0 then the default. PREDICTED: the two within
#    +-15% of each other, argmax equal (rounding order only: the start-up check's 4.9e-4 is
#    the same for both).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s32lead4; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s32-lead4.tgz" -C "$R" .; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
mkdir -p /work/main/target/tmp
gunzip -c "$D/model_gpu4.gz" > /tmp/model_gpu && chmod +x /tmp/model_gpu
gunzip -c "$D/wpe4.gz" > /tmp/wpe && chmod +x /tmp/wpe
G=$ROOT/.dev-s32-gbar
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$G"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
el start
timeout 80 /tmp/model_gpu --test-threads 12 > "$R/model_gpu.txt" 2>&1; el "model_gpu rc=$?"
grep -E "FAILED|test result|panicked" "$R/model_gpu.txt" | cut -c1-240; save
P=plans/smollm2-135m-moa-50.toml
timeout 35 /tmp/wpe --like smollm2-135m --rows 16 --prompt 4096 --new 2 --profile-prefill --prefill-reps 3 --plan $P --plan dense --parity 136 > "$R/prefill.txt" 2>&1; el "prefill rc=$?"; save
MOA_WGPU_COOP_ATTN_SCORE_REGS=0 timeout 25 /tmp/wpe --like smollm2-135m --rows 1 --prompt 520 --new 2 --plan $P --parity 520 > "$R/par520-A.txt" 2>&1; el "par520 A rc=$?"; save
timeout 25 /tmp/wpe --like smollm2-135m --rows 1 --prompt 520 --new 2 --plan $P --parity 520 > "$R/par520-B.txt" 2>&1; el "par520 B rc=$?"
grep -o -E "== smollm2-135m [^:]*|prefill attention: [^;]*|max .logit err. [0-9.e-]+|argmax equal [0-9/]+|warm prefill: .*|  attention: .*" "$R/prefill.txt" "$R"/par520-*.txt | cut -c1-240 | tee "$R/summary.txt"
save
