#!/bin/bash
# Session 31, s31-pattn, call 1 (one H200 through Vulkan): the group prefill attention
# (prefill_coop_group.wgsl.j2) at fewer live registers, MOA_WGPU_COOP_ATTN_LIVE (issue 12).
# The default (K staged, V early; session 30) compiles to 255 registers: one workgroup of
# 192 lanes (6 warps) an SM; two need <= 168 (65 536 / 384, granularity 8).
# NOT RUN in session 31: both tries (04:12, 04:16 UTC) were refused before a machine started.
#   LIVE=1 (vc): V early for the first 32 columns only, P.V in 32-column chunks, the
#          second chunk's V B matrices read right after the first chunk's products
#          (8 V B + 2 P.V C live instead of 16 + 4: -48 registers of matrices);
#   LIVE=2 (qr): the 4 Q A matrices re-read from storage (L1) at each tile's scores
#          instead of held for the pass (-16);
#   LIVE=3 (vc+qr): both.
#   LIVE=4 (vs): V staged too, in the staged K tile's own buffer (no more workgroup
#          memory): V's 16-byte words loaded once per workgroup at the tile's top, stored
#          over K after every subgroup's scores, read by P.V as B matrices; the next K's
#          words stored after every P.V (4 workgroup barriers a tile instead of 2). V from
#          storage is now 6 subgroups x 16 B matrices a tile, each lane 2-byte pieces (8
#          registers a matrix in flight: likely what holds the 255, since d4, V alone, took
#          254); staged, one word array a lane (12 registers) serves K and V in turn.
#   LIVE=7 (vs+vc+qr): all three.
#   bash .dev-s31-pattn/call1.sh   (END=110 by default; run tool timeout_s 140; carry
#   [".dev-s31-pattn"], filled by benches/wgpu-h200/s31/pattn/pack.sh)
# Runs, one process each, SmolLM2 shape, random weights, wpe --like smollm2-135m --rows 16
# --prompt 4096 --new 2 --profile-prefill --prefill-reps 3 --plan moa-50 --plan dense (the
# first of each variant with --parity 136: a 136-token row, three key tiles, five query
# tiles), one NVIDIA shader disk cache (A1 loads cold):
#   regs (wgpu_decode_bench regs-pattn, layer 6: default, vc, qr, vc+qr, vs, vs+vc,
#   vs+qr, vs+vc+qr, d3), then A1 B1 C1 C2 B2 A2 (A = defaults, B = LIVE=4, C = LIVE=3).
# PREDICTIONS: registers default 255 (s30), d3 165 (s30), vc 200-255, qr 240-255, vc+qr
#   150-200 (the compiler may hoist the second chunk's V loads back up: then vc ~ default);
#   vs 130-168, vs+* 120-160. Attention ms a pass moa-50 / dense: A 101.8-102.3 / 153.5
#   (s30 and its lead call); B (vs) 75-92 / 110-140 (V's loads, ~24 ms in s30's D5, mostly
#   gone, two workgroups an SM if <= 168; the two extra barriers cost some); C (vc+qr)
#   85-95 / 125-145 where it reaches <= 168 registers, else 100-110 / 150-160. Every variant passes the start-up check
#   (~4.9e-4) and parity (~0.05, 3/3). Whole pass A ~196 ms, warm prefill ~162k tok/s
#   moa-50, ~129k dense. A/A noise <= 0.3% (s30).
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/s31pattn1; rm -rf "$R"; mkdir -p "$R"
END=${END:-110}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s31-pattn-call1.tgz" -C "$R" .; }
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
timeout 25 /tmp/wdb regs-pattn $P 6 default,vc,qr,vc+qr,vs,vs+vc,vs+qr,vs+vc+qr,d3 > "$R/regs.txt" 2>&1
el "regs rc=$?"; save
B="MOA_WGPU_COOP_ATTN_LIVE=4"; C="MOA_WGPU_COOP_ATTN_LIVE=3"
one A1 35 - --plan $P --plan dense --parity 136
one B1 25 "$B" --plan $P --plan dense --parity 136
one C1 25 "$C" --plan $P --plan dense --parity 136
one C2 15 "$C" --plan $P --plan dense --parity 0
one B2 15 "$B" --plan $P --plan dense --parity 0
one A2 15 - --plan $P --plan dense --parity 0
{
  grep -E "regs" "$R/regs.txt" | cut -c1-400
  for n in A1 B1 C1 C2 B2 A2; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "== $n"
    grep -o -E "== smollm2-135m [^:]*|prefill attention: [^;]*|loaded in [0-9.]+ s|max .logit err. [0-9.e-]+|argmax equal [0-9/]+|warm prefill: .*|  attention: .*|       step: .*|Error.*|panicked.*" "$t" | cut -c1-260
  done
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"
save
