#!/bin/bash
# Session 30, s30-pattn, call 1 (one H200 through Vulkan): the group prefill attention's
# K/V loads (prefill_coop_group.wgsl.j2, issue 12 items 2 and 4). Which loads cost
# (diagnostics 4: no K loads, 5: no V loads; wrong results), what the driver compiled
# (registers, workgroup memory: workgroups an SM), and four opt-in levers against the
# default (form 2: every subgroup reads K as B matrices and V as transposed B matrices
# straight from storage, right where they are used):
#   SK   MOA_WGPU_COOP_ATTN_STAGE_K=1: K staged once per workgroup in workgroup memory
#        (16-byte loads two tiles ahead, stored between 2 workgroup barriers a tile);
#   SKV  STAGE_K=1 STAGE_V=1: K and V staged, so the workgroup takes one 16-query block
#        per head (3 subgroups, q_tile 16, 38 400 bytes);
#   VE   MOA_WGPU_COOP_ATTN_V_EARLY=1: the tile's V B matrices read right after the
#        scores, their latency behind the softmax (+16 live matrices a lane);
#   KN   MOA_WGPU_COOP_ATTN_K_NEXT=1: the next tile's K B matrices read right after this
#        tile's scores (software pipelining through registers, +16 matrices a lane);
#   SKVE STAGE_K=1 V_EARLY=1.
#   bash .dev-s30-pattn/call1.sh   (END=185 by default; run tool timeout_s 235; carry
#   [".dev-s30-pattn"], filled by benches/wgpu-h200/s30/pattn/pack.sh)
# Runs, one process each, SmolLM2 shape, random weights, wpe --like smollm2-135m --rows 16
# --prompt 4096 --new 2 --profile-prefill --prefill-reps 3 --plan moa-50 --plan dense
# (first of each variant with --parity 24), one NVIDIA shader disk cache (A1 loads cold):
#   regs (wgpu_decode_bench regs-pattn, layer 6), A1 SK1 SKV1 VE1 KN1 SKVE1, D4 D5
#   (moa-50 only), A2, SKVE2 KN2 VE2 SKV2 SK2, A3 (if time is left).
# MODEL (a pass = 8 rows x 4096, moa-50; 2.005M group tiles = (workgroup, 64-key tile)):
#   unique K+V a group tile 16 KiB (8 + 8). Default: each of the 6 subgroups (3 heads x 2
#   16-query blocks) loads 16 K + 16 V B matrices of 512 B = 16 KiB, 96 KiB a group tile
#   requested (197 GB a pass, 5.8 B/cycle an SM at 129.5 ms: not L1 bandwidth) in 2- to
#   4-byte lane loads touching ~8 lines each (~1000 L1 wavefronts a subgroup-tile), each
#   tile's K needed at once by the scores (no overlap). SK: K once a workgroup in 16-byte
#   words (2.7 a lane), read back as B matrices from workgroup memory: 56 KiB requested a
#   group tile. SKV: 16 KiB per (16 queries x 3 heads): 32 KiB per 32 queries (1/3).
#   Per SM in flight: default 2 WGs (if 128-168 registers) x 6 subgroups x 16 B matrices.
#   Occupancy: workgroup memory 39 936 B (A, VE, KN) -> 5 WGs by memory; SK 49 152 -> 4;
#   SKV 38 400 (96 lanes) -> 5; registers x 192 lanes: <= 168 -> 2 WGs an SM (12 warps),
#   <= 112 -> 3, <= 80 -> 4 (65 536 registers an SM).
# PREDICTIONS (attention ms a pass, moa-50 / dense): A 129.5 / 200.9 (s29 lead call);
#   D4 95-105, D5 95-110 (each about half of the loads' ~73 ms, overlap makes them sum to
#   more); SK 112-125 / 175-195; SKV 110-135 / 170-205; VE 120-128 / 185-198; KN 110-125
#   / 175-195; SKVE 108-122 / 170-190; registers: default 128-168, VE and KN +30-64 (past
#   168 one workgroup an SM: they then lose). Every variant passes the start-up check
#   (4.9e-4) and parity (0.0542, 3/3). Whole pass A ~224 ms (RoPE 8 tokens a workgroup,
#   main's default since 65720a2), warm prefill ~146k tok/s.
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/s30pattn1; rm -rf "$R"; mkdir -p "$R"
END=${END:-185}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s30-pattn-call1.tgz" -C "$R" .; }
left() { [ $(( $(date +%s) - s )) -lt "$END" ]; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
gunzip -c "$D/wdb.gz" > /tmp/wdb && chmod +x /tmp/wdb
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1
mkdir -p /tmp/nv; export __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 2 --profile-prefill --prefill-reps 3"
one() {  # name, cap, env assignments ("-" for none), then wpe's args
  local n=$1 cap=$2 e=$3; shift 3
  left || { el "$n skipped (END)"; return; }
  [ "$e" = - ] && e=""
  env $e timeout "$cap" /tmp/wpe $A "$@" > "$R/$n.txt" 2>&1
  el "$n rc=$?"; save
}
el start
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > "$R/gpu.txt" 2>&1
timeout 40 /tmp/wdb regs-pattn $P 6 default,sk,sk+sv,ve,kn,sk+ve,sv,d3,d4,d5 > "$R/regs.txt" 2>&1
el "regs rc=$?"; save
SK="MOA_WGPU_COOP_ATTN_STAGE_K=1"; SKV="MOA_WGPU_COOP_ATTN_STAGE_K=1 MOA_WGPU_COOP_ATTN_STAGE_V=1"
VE="MOA_WGPU_COOP_ATTN_V_EARLY=1"; KN="MOA_WGPU_COOP_ATTN_K_NEXT=1"
SKVE="MOA_WGPU_COOP_ATTN_STAGE_K=1 MOA_WGPU_COOP_ATTN_V_EARLY=1"
one A1 60 - --plan $P --plan dense --parity 24
one SK1 35 "$SK" --plan $P --plan dense --parity 24
one SKV1 35 "$SKV" --plan $P --plan dense --parity 24
one VE1 35 "$VE" --plan $P --plan dense --parity 24
one KN1 35 "$KN" --plan $P --plan dense --parity 24
one SKVE1 35 "$SKVE" --plan $P --plan dense --parity 24
one D4 20 MOA_WGPU_COOP_ATTN_DIAG=4 --plan $P --parity 0
one D5 20 MOA_WGPU_COOP_ATTN_DIAG=5 --plan $P --parity 0
one A2 25 - --plan $P --plan dense --parity 0
one SKVE2 25 "$SKVE" --plan $P --plan dense --parity 0
one KN2 25 "$KN" --plan $P --plan dense --parity 0
one VE2 25 "$VE" --plan $P --plan dense --parity 0
one SKV2 25 "$SKV" --plan $P --plan dense --parity 0
one SK2 25 "$SK" --plan $P --plan dense --parity 0
one A3 25 - --plan $P --plan dense --parity 0
{
  grep -E "regs" "$R/regs.txt" | cut -c1-400
  for n in A1 SK1 SKV1 VE1 KN1 SKVE1 D4 D5 A2 SKVE2 KN2 VE2 SKV2 SK2 A3; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "== $n"
    grep -o -E "== smollm2-135m [^:]*|prefill attention: [^;]*|after PrefillGroupForm.{0,200}|loaded in [0-9.]+ s|max .logit err. [0-9.e-]+|argmax equal [0-9/]+|warm prefill: .*|  attention: .*|       step: .*|Error.*|panicked.*" "$t" | cut -c1-260
  done
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"
save
