#!/bin/bash
# Session 35, s35-l2 call 1 (one H200 through Vulkan): issue 12's decode step with the next layer's
# K/V read into L2 during this layer's products (MOA_WGPU_KV_PREFETCH; kv_prefetch.wgsl dispatches
# recorded right after the out / gate_up / down products with no barrier before them).
#   BIN=/tmp/s35-l2-bin bash benches/wgpu-h200/s35/l2/pack.sh /work/main/.dev-s35-l2
#   bash .dev-s35-l2/call1.sh   (carry [".dev-s35-l2"]; run tool timeout_s 240)
# Runs (each its own process; SmolLM2 shape, 16 x 4096, moa-50, 64 greedy tokens, --profile 5,
# MOA_WGPU_COOP_ATTN=0): W (throw-away warm-up), then A B C D, D C B A, A B C D with
#   A = MOA_WGPU_KV_PREFETCH=0 (main's dispatches), B = all (out:4,gate_up:7,down:6: 26 MB a layer
#   on average split by the products' times), C = gate_up,down (7:6), D = all,k (K only, half).
# The first round with --parity 24. Profile rows with the prefetch: kv_prefetch (its dispatches
# alone), attn_pf (each attention right after its layer's prefetch: less kv_prefetch = the
# attention from L2), step_cb / step_cb_nopf (the pass with / without the prefetch dispatches,
# each of 5 repeats in its own command buffer as the engine submits steps).
# MODEL (written before the call): the attention reads 25.9 MB a layer at 0.31 of the copy rate;
# L2-warm it is 2.5-5 us shorter (lead call 2, ~3.5 on average). The products (out 4, gate_up 7.1,
# down 6 us) launch 96-144 workgroups on 132 SMs and are latency-bound; each share (6.1 / 10.7 /
# 9.1 MB for B) at ~3 TB/s takes 2-3.5 us + launch beside its product, inside the product's time, so
# the barrier after the product waits for nothing extra. Between the prefetch and layer l+1's
# attention only ~8 MB of weights pass through L2 (50 MB), so most of the K/V survives, less for the
# 41-43 MB layers.
# PREDICTION: A's device step ~1 345 us (--profile 5), tok/s 10.1-11.3k (64-token runs are noisy).
# B: step_cb_nopf - step_cb = 40-100 us (-3..-7%), tokens/s +2..+6% in every pair; attn_pf -
# kv_prefetch ~ 16-17 us a layer (attention alone ~19.8); kv_prefetch alone 3-4 us a dispatch.
# C: 70-100% of B's gain. D (K only): 40-60% of B's gain. Parity 0.0534, argmax 3/3 for all four.
# If step_cb barely drops while attn_pf shows a warm attention, the products' dispatches or the
# qkv evict it, or the prefetch stretches the products (compare out/gate_up/down in step terms).
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/s35l2c1; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s35-l2-call1.tgz" -C "$R" .; cp "$R/times.txt" "$R/profile.txt" "${OUT:-/tmp}/" 2>/dev/null; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
form() { case $1 in A) echo 0;; B) echo all;; C) echo gate_up,down;; D) echo all,k;; E) echo down;; esac; }
dec() { local name=$1 par=$2; local f; f=$(form "${name:0:1}")
  MOA_WGPU_KV_PREFETCH=$f timeout 40 /tmp/wpe --like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1
  el "$name ($f) rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -o -E 'max .logit err. [^,]*, argmax equal [0-9/]+' $R/$name.txt)"
  { echo "== $name MOA_WGPU_KV_PREFETCH=$f"; grep -E "^ *(qkv|attention|out|kv_prefetch|gate_up|down|step|attn_pf|step_cb|step_cb_nopf):" "$R/$name.txt"; } >> "$R/profile.txt"; }
el start
dec W 0
dec A1 24; dec B1 24; dec C1 24; dec D1 24; save
dec D2 0; dec C2 0; dec B2 0; dec A2 0; save
dec A3 0; dec B3 0; dec C3 0; dec D3 0
save
