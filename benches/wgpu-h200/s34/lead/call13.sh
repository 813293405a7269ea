#!/bin/bash
# Session 34, lead call 13 (one H200 through Vulkan): what the subgroup products' fixed chain costs
# now that s34-sg fitted their K steps (s34-down's "next": size the reduction before building a
# cheaper one). Each run its own process (inside --sg-variants the DIAG rows ran ~3x slow).
#   bash .dev-lead34/call13.sh   (carry [".dev-lead34"], wpe of 72d1cc1; run tool timeout_s 150)
# Runs (16 x 4096, moa-50, 64 greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0): W (throwaway
# warm-up), D0 (default), F1 (MOA_WGPU_SG_DIAG=1: no K loop: dispatch, reduction, barrier,
# epilogue), L1 (DIAG=1 with MOA_WGPU_SG_FIT=0: the loop form's shape), F3 (DIAG=3: loads only),
# D0b (default again).
# PREDICTED (us a dispatch): D0 qkv 5.2-5.7, out 3.9-4.3, down 5.9-6.2; F1 qkv 3.1-3.4, out 2.8-3.1,
# down 2.9-3.2 (fewer partials to reduce than L1's 8); L1 qkv 3.2-3.5, out 2.9-3.2, down 2.9-3.2
# (s34-prod: 3.41 / 3.09 / 3.04); F3 out 3.2-3.6, down 4.3-4.8.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s34lead13; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s34-lead13.tgz" -C "$R" .; cp "$R/times.txt" "$R/profile.txt" "${OUT:-/tmp}/" 2>/dev/null; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
dec() { local name=$1; shift
  env "$@" timeout 25 /tmp/wpe --like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096 --parity 0 > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1)"
  { echo "== $name $*"; grep -E "^ *(qkv|out|gate_up|down|step|probe):" "$R/$name.txt"; } >> "$R/profile.txt"; }
el start
dec W; dec D0; dec F1 MOA_WGPU_SG_DIAG=1; dec L1 MOA_WGPU_SG_DIAG=1 MOA_WGPU_SG_FIT=0; dec F3 MOA_WGPU_SG_DIAG=3; dec D0b
save
