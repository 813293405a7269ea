#!/bin/bash
# Session 29, s29-pattn, call 2 (PREPARED, for the lead; one H200 through Vulkan): the group
# form with V staged in workgroup memory (MOA_WGPU_COOP_ATTN_STAGE_V=1: each key tile's V
# loaded once per workgroup in 16-byte words a tile ahead, two workgroup barriers a tile,
# read as B matrices from workgroup memory) against the new default (form 2, subgroup
# barriers, V read by every subgroup from storage as transposed B matrices), on the
# release wgpu_products_engine of s29-pattn's head (pack.sh; c577e34 merged main with
# s29-gemm's products, so the whole pass and tok/s include them: ~231 ms a pass and
# ~140k tok/s predicted for A, moa-50).
#   bash .dev-s29-pattn/call2.sh   (END=130 by default; run tool timeout_s 170; carry
#   [".dev-s29-pattn"], filled by benches/wgpu-h200/s29/pattn/pack.sh)
# Runs, one process each, --like smollm2-135m --rows 16 --prompt 4096 --new 2
# --profile-prefill --prefill-reps 3 --plan moa-50 --plan dense, one NVIDIA shader cache:
#   A1 default (cold load, --parity 24), B1 STAGE_V=1 (--parity 24), B2, A2; then
#   D3 = form 2 with MOA_WGPU_COOP_ATTN_DIAG=3 (no K/V loads; wrong results), moa-50 only:
#   what the loads still cost with subgroup barriers.
# PREDICTIONS (attention ms a pass, moa-50 / dense): A 129.5 / 201.0 (call 1); B 95-125 /
#   150-195 if V's 2-byte transposed loads are most of call 1's ~91 ms of K/V loads (the two
#   workgroup barriers a tile give back part of form 2's 24 ms); B passes the start-up
#   check (4.9e-4) and parity (0.0542, 3/3). D3 50-65. A1's cold load (the branch builds
#   the plan's scalar attention kernels on all cores since 4745fa8): 15-22 s against call
#   1's 25.1 s (F1a, moa-50).
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/s29pattn2; rm -rf "$R"; mkdir -p "$R"
END=${END:-130}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s29-pattn-call2.tgz" -C "$R" .; }
left() { [ $(( $(date +%s) - s )) -lt "$END" ]; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1
mkdir -p /tmp/nv; export __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 2 --profile-prefill --prefill-reps 3"
one() {  # name, stage_v, diag, cap, then wpe's args
  local n=$1 v=$2 dg=$3 cap=$4; shift 4
  left || { el "$n skipped (END)"; return; }
  env MOA_WGPU_COOP_ATTN_STAGE_V=$v MOA_WGPU_COOP_ATTN_DIAG=$dg timeout "$cap" /tmp/wpe $A "$@" > "$R/$n.txt" 2>&1
  el "$n rc=$?"; save
}
el start
one A1 0 0 60 --plan $P --plan dense --parity 24
one B1 1 0 35 --plan $P --plan dense --parity 24
one B2 1 0 25 --plan $P --plan dense --parity 0
one A2 0 0 25 --plan $P --plan dense --parity 0
one D3 0 3 20 --plan $P --parity 0
{
  for n in A1 B1 B2 A2 D3; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "== $n"
    grep -o -E "== smollm2-135m [^:]*|prefill attention: [^;]*|loaded in [0-9.]+ s|max .logit err. [0-9.e-]+|argmax equal [0-9/]+|warm prefill: .*|  attention: .*|       step: .*|Error.*|panicked.*" "$t" | cut -c1-220
  done
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"
save
