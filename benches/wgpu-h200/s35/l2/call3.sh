#!/bin/bash
# Session 35, s35-l2 call 3 (one H200 through Vulkan): call 2 found the attention DOES gain from the
# prefetch in the step (step_cb of all,far - all = +79.5 / +83.2 us: ~2.8 us a layer, as the
# lead's bench) but the prefetch dispatches cost ~160 us a step (all,far - nopf: +165 / +160),
# ~1.9 us each of 87: at one round a dispatch (263-480 workgroups) each reads its share at full
# DRAM rate, loading the memory system under the latency-bound products beside it. Are slower
# prefetches (fewer workgroups, more rounds) or fewer dispatches cheaper?
#   BIN=/tmp/s35-l2-bin bash benches/wgpu-h200/s35/l2/pack.sh /work/main/.dev-s35-l2
#   bash .dev-s35-l2/call3.sh   (carry [".dev-s35-l2"]; run tool timeout_s 120)
# Runs (each its own process, as calls 1-2): G1 H1 S1 K1, K2 S2 H2 G2 with
#   G = all,groups:64 (3 dispatches a layer, <= 64 workgroups: ~2 MB a round, 3-5 rounds),
#   H = all,groups:64,far (G's cost, no gain), S = down (one dispatch a layer, all 26 MB),
#   K = all,groups:128.
# MODEL / PREDICTION (written before the call): with 64 workgroups a share's rounds (~1 us each
# under load) take about its product's time, at ~2 TB/s, so the products' loads wait less: the
# cost (H - nopf) falls to 60-110 us while the gain (H - G) stays 60-85 us (the bytes still reach
# L2 before the attention): G's step_cb - step_cb_nopf in [-20, +40] us. K between G and call 1's
# B. S: one dispatch but 26 MB beside a 6 us product, the barrier before the qkv waits for it:
# step_cb - nopf +40..+90 us. A form wins only if step_cb < step_cb_nopf in both runs.
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/s35l2c3; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s35-l2-call3.tgz" -C "$R" .; cp "$R/times.txt" "$R/profile.txt" "${OUT:-/tmp}/" 2>/dev/null; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
form() { case $1 in G) echo all,groups:64;; H) echo all,groups:64,far;; S) echo down;; K) echo all,groups:128;; esac; }
dec() { local name=$1; local f; f=$(form "${name:0:1}")
  MOA_WGPU_KV_PREFETCH=$f timeout 40 /tmp/wpe --like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096 --parity 0 > "$R/$name.txt" 2>&1
  el "$name ($f) rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -o -E 'MOA_WGPU_KV_PREFETCH=[a-z_:0-9,]+' $R/$name.txt | head -1)"
  { echo "== $name MOA_WGPU_KV_PREFETCH=$f"; grep -E "^ *(attention|out|kv_prefetch|gate_up|down|step|attn_pf|step_cb|step_cb_nopf):" "$R/$name.txt"; } >> "$R/profile.txt"; }
el start
dec G1; dec H1; dec S1; dec K1; save
dec K2; dec S2; dec H2; dec G2
save
