#!/bin/bash
# Session 39, lead call 2: the subgroup products' UNROLL (K trips' weight loads issued first) on the
# 1B and 8B shapes, A/B in one process each (--sg-variants over the same request's caches).
# Call 1: the 1B's products at 1.4 TB/s (gate_up 48.5 us for 67 MB), the 8B's at 1.0-1.6 TB/s.
# PREDICTED: unroll 2 takes gate_up/down/head/qkv 1.3-1.8x faster on both shapes (bytes in flight x2),
# unroll 4 a little more or the same (registers); rows 4 beside unroll 2 a little faster at 4 rows.
D=/work/main/.dev-lead39; ROOT=$PWD; R=/tmp/s39c2; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s39-c2.tgz" -C "$R" .; cp "$R/times.txt" "${OUT:-/tmp}/" 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$D/wpe.xz" /tmp/wpe2 && chmod +x /tmp/wpe2
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
export MOA_WGPU_COOP_ATTN=0
el start
V="-:-:0;-:-:0:-:2;-:-:0:-:4;-:-:0:4:2;-:-:0:4:4;-:-:0;-:-:0:-:2;-:-:0:-:4"
prof() { grep -E "^variant .*decode step per dispatch kind|^ *(qkv|attention|out|gate_up|down|head|step):" "$1" | cut -c1-120 | tee -a "$R/times.txt"; }
timeout 100 /tmp/wpe2 --like llama-3.2-1b --rows 4 --prompt 4096 --new 32 --profile 5 --parity 24 --plan dense --sg-variants "$V" > "$R/l1b-r4.txt" 2>&1; el "1b r4 rc=$?"; grep parity "$R/l1b-r4.txt" | cut -c1-200 | tee -a "$R/times.txt"; prof "$R/l1b-r4.txt"; save
timeout 60 /tmp/wpe2 --like llama-3.2-1b --rows 1 --prompt 4096 --new 32 --profile 5 --parity 0 --plan dense --sg-variants "-:-:0;-:-:0:-:2;-:-:0:4:2;-:-:0:4:4;-:-:0" > "$R/l1b-r1.txt" 2>&1; el "1b r1 rc=$?"; prof "$R/l1b-r1.txt"; save
timeout 200 /tmp/wpe2 --like llama-3-8b --rows 4 --prompt 4096 --new 16 --profile 3 --parity 0 --plan dense --sg-variants "$V;-:-:4;-:-:4:-:4" > "$R/l8b.txt" 2>&1; el "8b rc=$?"; prof "$R/l8b.txt"; save
