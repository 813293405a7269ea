#!/bin/bash
# Session 33, lead call 9 (one H200 through Vulkan): merged main 94b2a91 (s33-head's unchecked
# LM head the default; s33-mega's fused dispatch opt-in and right).
#   bash .dev-lead33/call9.sh   (carry [".dev-lead33"]: model_gpu test binary, release wpe, gl
#   debs; run tool timeout_s 200)
# 1. tests/model_gpu.rs, the whole file. PREDICTED: 30 passed, 1 ignored (session 32), 45-60 s.
# 2. Decode, 16 x 4096, moa-50, 256 new tokens: merged defaults (M) against the checked head
#    (H = MOA_WGPU_COOP_HEAD_UNCHECKED=0), M1 H1 at --profile 5 --parity 24, then H2 M2 M3 H3.
#    PREDICTED: M 11.05-11.15k tok/s, +0.5..+1.2% over H; head 30-33 us against 44-49;
#    parity 0.0496, 3/3.
# 3. The fused dispatch's parity on merged main (F = MOA_WGPU_DECODE_FUSED_MLP=1, 1 row):
#    PREDICTED 0.0506, 3/3.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s33lead9; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s33-lead9.tgz" -C "$R" .; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
mkdir -p /work/main/target/tmp
gunzip -c "$D/model_gpu.gz" > /tmp/model_gpu && chmod +x /tmp/model_gpu
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
el start
timeout 90 /tmp/model_gpu --test-threads 12 > "$R/model_gpu.txt" 2>&1; el "model_gpu rc=$?"
grep -E "FAILED|test result|panicked" "$R/model_gpu.txt" | cut -c1-240; save
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
dec() { local name=$1 prof=$2 par=$3; shift 3
  env "$@" timeout 25 /tmp/wpe --like smollm2-135m --rows 16 --new 256 --profile $prof --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -m1 -E '^ *head: ' $R/$name.txt | grep -o -E '[0-9.]+ us/dispatch') $(grep -o -E 'max .logit err. [0-9.a-z]+, argmax equal [0-9/]+' $R/$name.txt)"; }
dec M1 5 24; dec H1 5 24 MOA_WGPU_COOP_HEAD_UNCHECKED=0
dec H2 1 0 MOA_WGPU_COOP_HEAD_UNCHECKED=0; dec M2 1 0; dec M3 1 0; dec H3 1 0 MOA_WGPU_COOP_HEAD_UNCHECKED=0
save
MOA_WGPU_DECODE_FUSED_MLP=1 timeout 25 /tmp/wpe --like smollm2-135m --rows 1 --new 4 --plan $P --prompt 64 --parity 24 > "$R/F.txt" 2>&1
el "F rc=$? $(grep -o -E 'max .logit err. [0-9.a-z]+, argmax equal [0-9/]+' $R/F.txt) $(grep -h 'fused mlp meetings' $R/F.txt)"
save
