#!/bin/bash
# Session 32, lead call 3 (one H200 through Vulkan): merged main 205ac4c (V in K's tile and the
# select masks the defaults; s32-dec, s32-pattn, s32-user, s32-gbar merged).
#   bash .dev-lead32/call3.sh   (carry [".dev-lead32", ".dev-s32-gbar"], run tool timeout_s 200)
# .dev-lead32 holds main's release wgpu_products_engine (wpe.gz), the model_gpu test binary
# (model_gpu.gz) and this script; .dev-s32-gbar is s32-gbar's packed call 2 (wgpu_gbar, `fresh`).
# 1. s32-gbar's call 2 (END=60; see its header for the predictions: fresh plain loads of lines
#    read once a dispatch 0 wrong at every W and P if stale L1 lines were call 1's cause).
# 2. tests/model_gpu.rs, the whole file, on the new defaults (29-31 tests; session 30's lead
#    call 2: 29 passed, 1 ignored in 50.2 s cold). PREDICTED: all pass, 45-60 s.
# 3. wpe on merged main: prefill moa-50 and dense (--profile-prefill, 3 reps, --parity 136):
#    PREDICTED attention 77.2-77.4 / 114.5-114.7 ms a pass, 185-186k / 152-154k tok/s (lead
#    call 2); then a decode run (--new 256, moa-50): PREDICTED 1.41-1.46 ms a step (s32-dec:
#    A 1454-1463 us by tokens/s, 1419 us by the profile), parity 0.0496, 3/3.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s32lead3; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s32-lead3.tgz" -C "$R" .; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
mkdir -p /work/main/target/tmp
gunzip -c "$D/model_gpu.gz" > /tmp/model_gpu && chmod +x /tmp/model_gpu
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
G=$ROOT/.dev-s32-gbar
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$G"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
el start
mkdir -p $R/gbar; OUT=$R/gbar RDIR=$R/gbar2 END=60 bash "$G/call2.sh" > "$R/gbar-call2.txt" 2>&1; el "gbar call2 rc=$?"; save
timeout 100 /tmp/model_gpu --test-threads 12 > "$R/model_gpu.txt" 2>&1; el "model_gpu rc=$?"
grep -E "FAILED|test result|panicked" "$R/model_gpu.txt" | cut -c1-240; save
P=plans/smollm2-135m-moa-50.toml
timeout 40 /tmp/wpe --like smollm2-135m --rows 16 --prompt 4096 --new 2 --profile-prefill --prefill-reps 3 --plan $P --plan dense --parity 136 > "$R/prefill.txt" 2>&1; el "prefill rc=$?"; save
timeout 30 /tmp/wpe --like smollm2-135m --rows 16 --prompt 4096 --new 256 --profile 5 --plan $P --parity 24 > "$R/decode.txt" 2>&1; el "decode rc=$?"
grep -o -E "== smollm2-135m [^:]*|prefill attention: [^;]*|max .logit err. [0-9.e-]+|argmax equal [0-9/]+|warm prefill: .*|  attention: .*|decode: [0-9]+ steps.*|[0-9]+ dispatches/step, [0-9.]+ ms/step" "$R/prefill.txt" "$R/decode.txt" | cut -c1-240 | tee "$R/summary.txt"
save
