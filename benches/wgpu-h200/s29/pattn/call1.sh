#!/bin/bash
# Session 29, s29-pattn, call 1 (one H200 through Vulkan): where the group form's attention
# time goes (timing diagnostics, wrong results) and three variants of it against the
# default (prefill_coop_group.wgsl.j2, MOA_WGPU_COOP_ATTN_FORM):
#   1 (default) one pass, online softmax, output in the softmax invocations' registers,
#     every tile's P.V through workgroup memory, 4 workgroup barriers a tile;
#   2 = 1 with subgroup barriers (each subgroup's regions are its own);
#   3 two passes over the keys (the rows' maxima from QK^T, then P = exp2(s - m_final) and
#     P.V summed in C matrices: no rescale, no C load, no per-tile output round trip; +50%
#     of the QK^T work), subgroup barriers;  4 = 3 with workgroup barriers.
# Diagnostics of form 1 (MOA_WGPU_COOP_ATTN_DIAG, no start-up check, wrong results):
#   D1 no softmax (no max/exp loops), D2 P.V summed in C without the per-tile round trip
#   (no PV store, barrier, acc update), D3 no K/V loads in the loop (one block stands in).
#   bash .dev-s29-pattn/call1.sh   (END=205 by default; run tool timeout_s 260; carry
#   [".dev-s29-pattn"], filled by benches/wgpu-h200/s29/pattn/pack.sh)
# Runs, one process each, SmolLM2 shape, random weights, --rows 16 --prompt 4096 --new 2
# --profile-prefill --prefill-reps 3, all sharing one NVIDIA shader disk cache (the first
# run loads cold): F1 F2 F3 F4 F3 F2 F1 with --plan moa-50 --plan dense (the first three
# with --parity 24), then D1 D2 D3 with moa-50 only.  No HF run (s28's 610.7k tok/s).
# MODEL (a pass 8 x 4096, moa-50): 2.005M group tiles of 6 subgroups x (16 QK + 16 PV
# 16x16x16 MMAs) = 3.15 TFLOP issued (3.05 over kept pairs); at 156.6 ms that is ~13.5k
# SMSP cycles a subgroup-tile against ~420 cycles of mma.sync: the time is not the matrix
# units' but the latency of the loads, the 4 barriers and ~1000 scalar instructions a
# lane a tile (softmax ~500, P.V round trip ~100).
# PREDICTIONS (attention ms a pass, moa-50 / dense): F1 154-158 / 236 (s28);
#   F2 125-150 / 190-230 (barriers of 6 warps off the path); F3 130-170 / 200-260;
#   F4 150-185 / 230-280. D1 100-120 (softmax ~40 ms), D2 125-140, D3 110-135.
#   All forms pass the start-up check (<= 1e-3) and parity (~0.05, 3/3).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s29pattn1; rm -rf "$R"; mkdir -p "$R"
END=${END:-205}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s29-pattn-call1.tgz" -C "$R" .; }
left() { [ $(( $(date +%s) - s )) -lt "$END" ]; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1
mkdir -p /tmp/nv; export __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 2 --profile-prefill --prefill-reps 3"
one() {  # name, form, diag, cap, then wpe's args
  local n=$1 f=$2 dg=$3 cap=$4; shift 4
  left || { el "$n skipped (END)"; return; }
  env MOA_WGPU_COOP_ATTN_FORM=$f MOA_WGPU_COOP_ATTN_DIAG=$dg timeout "$cap" /tmp/wpe $A "$@" > "$R/$n.txt" 2>&1
  el "$n rc=$?"; save
}
el start
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > "$R/gpu.txt" 2>&1
one F1a 1 0 60 --plan $P --plan dense --parity 24
one F2a 2 0 35 --plan $P --plan dense --parity 24
one F3a 3 0 35 --plan $P --plan dense --parity 24
one F4a 4 0 30 --plan $P --plan dense --parity 0
one F3b 3 0 25 --plan $P --plan dense --parity 0
one F2b 2 0 25 --plan $P --plan dense --parity 0
one F1b 1 0 25 --plan $P --plan dense --parity 0
one D1 1 1 20 --plan $P --parity 0
one D2 1 2 20 --plan $P --parity 0
one D3 1 3 20 --plan $P --parity 0
{
  for n in F1a F2a F3a F4a F3b F2b F1b D1 D2 D3; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "== $n"
    grep -o -E "== smollm2-135m [^:]*|prefill attention: [^;]*|loaded in [0-9.]+ s|max .logit err. [0-9.e-]+|argmax equal [0-9/]+|prefill: [^;]*|warm prefill: .*|  attention: .*|       step: .*|Error.*|panicked.*" "$t" | cut -c1-220
  done
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"
save
