#!/bin/bash
# Session 32, branch s32-gbar, call 1 (one H200 through Vulkan; the helper's only call).
#   END=125 bash .dev-s32-gbar/call1.sh   (run tool timeout_s 150; carry .dev-s32-gbar, filled by
#   BIN=/tmp/s32-gbar-bin bash benches/decode-h200/s32/gbar/pack.sh)
# Question: does a device-wide barrier inside one dispatch (W workgroups of 256 meeting at an
# arrival counter in storage, lane 0 spinning on atomicLoad) hold on the H200 through wgpu/Vulkan,
# and what does a meeting cost against a dependent dispatch (s32-dec: an empty dependent
# dispatch 2.15-2.30 us)? examples/wgpu_gbar.rs: forms disp (P dependent dispatches of the
# one-phase kernel), plain (one dispatch, P phases, plain loads/stores across the meetings),
# atomic (the data through atomicLoad/atomicStore), none (no meeting: the phases' own time).
#
# PREDICTED (written before the call):
#  - disp: 2.2-2.5 us a phase (the dependent-dispatch floor; the phase's work ~0.1).
#  - the meeting (slope of plain/atomic over P, (T64 - T8) / 56): 0.8-1.5 us at W = 132
#    (an L2 atomic add + the spin's L2 round trips + the CTA barrier), W = 66 about the same,
#    W = 264 +0.1..+0.4 (264 adds on one word), W = 16 0.6-1.2.
#  - none: 0.05-0.3 us a phase; wrong values > 0 (races, as intended).
#  - correctness: atomic 0 wrong everywhere; plain: uncertain, guess wrong > 0 at some W
#    (the fixed partner's lines read two phases earlier may sit stale in the SM's L1).
#  - residency (check only, P = 8): 528 and 1056 (8 workgroups of 256 an SM, 2048 lanes an SM
#    x 132 SMs) pass; 1057 and 2112 end with the error flag (spin bound 2^18), no hang.
#  - so a fused out -> gate_up -> down dispatch would save (2.3 - meeting) x 2-3 a layer,
#    i.e. 30-90 us a step of 1 419 (if the products' kernels keep their times as slices).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s32gbar1}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-125}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s32-gbar-${CALL:-call1}.tgz" -C "$R" . 2>/dev/null; }
gunzip -c "$D/gbar.gz" > "$B/gbar" && chmod +x "$B/gbar" || { el "no gbar.gz"; exit 1; }
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv > "$R/gpu.txt" 2>&1
run() { local name=$1 cap=$2; shift 2; left $(( cap + 2 )) || { el "skip $name"; return; }
  env "$@" timeout $cap $B/gbar $GB_ARGS > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -E "^(check|time|gbar)" "$R/$name.txt" | cut -c1-150; save; }
# 1: a quick check of every form at the timed sizes (25 steps each, one submit).
GB_ARGS="16,66,132,264 1,8,64 plain,atomic,none" run sweep-a 40
# 2: the same again (a second process: A/A across processes).
GB_ARGS="16,66,132,264 1,8,64 plain,atomic,none" run sweep-b 40
# 3: residency (checks only): 8 an SM fits, one more does not.
GB_ARGS="528,1056,1057,2112 8 plain,atomic" run resident 25 MOA_GBAR_CHECK_ONLY=1 MOA_GBAR_SPIN=262144 MOA_GBAR_CHECK_STEPS=5
el done; save
