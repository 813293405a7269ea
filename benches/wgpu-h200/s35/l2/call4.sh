#!/bin/bash
# Session 35, s35-l2 call 4 (one H200 through Vulkan): where the prefetch's cost comes from. Calls
# 2-3: the attention gains 50-84 us a step from the prefetch, and the prefetch dispatches cost
# 160-197 us (the far twin's step_cb - step_cb_nopf), about what its 26 MB a layer take at full
# DRAM rate serialized (~7.4 us a layer); fewer workgroups (groups:64) cost more (the shares
# outlast their products). Is the cost DRAM-side (the latency-bound products' loads wait behind the
# prefetch's) or SM-side (loads and bytes into the SMs)? touch:N loads one 16-byte word of every
# N bytes: the same DRAM sectors at touch:32, the same lines at 64/128 if L2 fills whole lines.
#   BIN=/tmp/s35-l2-bin bash benches/wgpu-h200/s35/l2/pack.sh /work/main/.dev-s35-l2
#   bash .dev-s35-l2/call4.sh   (carry [".dev-s35-l2"]; run tool timeout_s 120)
# Runs (each its own process, as calls 1-3): P1 X1 Q1 Y1, Y2 Q2 X2 P2 with
#   P = all,touch:32, X = all,touch:32,far, Q = all,touch:128, Y = all,touch:128,far.
# MODEL / PREDICTION (written before the call): DRAM-side. At touch:32 the DRAM reads are call 2's
# (every sector), the SMs get half the bytes: cost (X - nopf) 140-190 us, gain (X - P) 50-85 us,
# P's net (step_cb - nopf) +60..+100 as call 1's B. At touch:128, if L2 fetches 32-byte sectors
# only, a quarter of the K/V reaches L2: cost ~40-60 us, gain ~15-25, net +20..+45; if it fetches
# whole 128-byte lines, cost and gain as P. No form wins (step_cb < step_cb_nopf in both runs).
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/s35l2c4; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s35-l2-call4.tgz" -C "$R" .; cp "$R/times.txt" "$R/profile.txt" "${OUT:-/tmp}/" 2>/dev/null; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
form() { case $1 in P) echo all,touch:32;; X) echo all,touch:32,far;; Q) echo all,touch:128;; Y) echo all,touch:128,far;; esac; }
dec() { local name=$1; local f; f=$(form "${name:0:1}")
  MOA_WGPU_KV_PREFETCH=$f timeout 40 /tmp/wpe --like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096 --parity 0 > "$R/$name.txt" 2>&1
  el "$name ($f) rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -o -E 'MOA_WGPU_KV_PREFETCH=[a-z_:0-9,]+' $R/$name.txt | head -1)"
  { echo "== $name MOA_WGPU_KV_PREFETCH=$f"; grep -E "^ *(attention|out|kv_prefetch|gate_up|down|step|attn_pf|step_cb|step_cb_nopf):" "$R/$name.txt"; } >> "$R/profile.txt"; }
el start
dec P1; dec X1; dec Q1; dec Y1; save
dec Y2; dec Q2; dec X2; dec P2
save
