#!/bin/bash
# Session 35, s35-l2 call 2 (one H200 through Vulkan): why call 1's K/V prefetch lost (step_cb
# +40..+98 us against step_cb_nopf in every run): does the attention gain anything in the step?
#   BIN=/tmp/s35-l2-bin bash benches/wgpu-h200/s35/l2/pack.sh /work/main/.dev-s35-l2
#   bash .dev-s35-l2/call2.sh   (carry [".dev-s35-l2"]; run tool timeout_s 120)
# Runs (each its own process, as call 1: 16 x 4096, moa-50, 64 greedy tokens, --profile 5,
# MOA_WGPU_COOP_ATTN=0): F1 B1 T1 B2 F2 T2 with
#   B = all (call 1's B), F = all,far (the same dispatches and bytes, but each layer reads the
#   caches of the layer 15 ahead: nothing of them in L2 when their attention runs), T = attn (the
#   whole next layer's K/V beside this layer's attention, whose tail leaves SMs idle).
# MODEL / PREDICTION (written before the call): step_cb(F) - step_cb(B) is what the attention
# gained from L2 in the step. If the K/V survive to the attention as in the lead's bench
# (-3.5 us a layer), F is ~100 us above B and the products' cost of the prefetch is ~6 us a
# layer (call 1: B +90 us net); if F = B (+-15 us), nothing reached the attention from L2
# (evicted, or not in the L2 partition its SMs read) and the prefetch is pure cost. I expect the
# second (call 1's attn_pf less the prefetch's own time showed no warm attention): F - B in
# [-15, +40] us. T: the prefetch competes with the attention's own reads: step_cb +30..+80 us
# over step_cb_nopf.
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/s35l2c2; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s35-l2-call2.tgz" -C "$R" .; cp "$R/times.txt" "$R/profile.txt" "${OUT:-/tmp}/" 2>/dev/null; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
form() { case $1 in A) echo 0;; B) echo all;; F) echo all,far;; T) echo attn;; esac; }
dec() { local name=$1; local f; f=$(form "${name:0:1}")
  MOA_WGPU_KV_PREFETCH=$f timeout 40 /tmp/wpe --like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096 --parity 0 > "$R/$name.txt" 2>&1
  el "$name ($f) rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -o -E 'MOA_WGPU_KV_PREFETCH=[a-z_:0-9,]+' $R/$name.txt | head -1)"
  { echo "== $name MOA_WGPU_KV_PREFETCH=$f"; grep -E "^ *(attention|out|kv_prefetch|gate_up|down|step|attn_pf|step_cb|step_cb_nopf):" "$R/$name.txt"; } >> "$R/profile.txt"; }
el start
dec F1; dec B1; dec T1; save
dec B2; dec F2; dec T2
save
