#!/bin/bash
# Session 32, branch s32-gbar, call 2 (NOT RUN by the helper: its budget was one call; ready for
# the lead). One H200 through Vulkan, ~20 s of command (+ the machine's start).
#   END=60 bash .dev-s32-gbar/call2.sh   (run tool timeout_s 80; carry .dev-s32-gbar, filled by
#   BIN=/tmp/s32-gbar-bin bash benches/decode-h200/s32/gbar/pack.sh, release wgpu_gbar with `fresh`)
# Question left by call 1: plain loads across an in-dispatch meeting read wrong data, but call 1's
# kernel re-read each line every second phase (stale L1 lines?), so it could not tell whether a
# line read once a dispatch (the fused products' case: each product's input read after its one
# meeting) is right with plain, 16-byte-able loads. `fresh` = plain loads over P + 1 regions,
# each read in one phase of a dispatch only; P = 2 is the plain form's single-meeting case.
# PREDICTED (written before the call): fresh 0 wrong at every W and P if stale L1 was the cause
# (guess: 60%), else > 0 (the stores not yet in L2 when the counter is seen); plain at P = 2:
# 0 wrong (no line re-read in one meeting) if L1 was the cause; times as call 1 (fresh = plain
# = atomic within 0.1 us a phase; its larger buffer: up to 17.6 MB at W = 264, P = 64).
D=$(cd "$(dirname "$0")" && pwd); R=${RDIR:-/tmp/s32gbar2}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-60}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s32-gbar-${CALL:-call2}.tgz" -C "$R" . 2>/dev/null; }
gunzip -c "$D/gbar.gz" > "$B/gbar" && chmod +x "$B/gbar" || { el "no gbar.gz"; exit 1; }
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start
run() { local name=$1 cap=$2; shift 2; left $(( cap + 2 )) || { el "skip $name"; return; }
  env "$@" timeout $cap $B/gbar $GB_ARGS > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -E "^(check|time|gbar)" "$R/$name.txt" | cut -c1-150; save; }
# 1: checks of the single-meeting case and of fresh lines (1 and 25 steps a submit).
GB_ARGS="16,132,264,1056 2,8,64 plain,fresh,atomic" run check25 20 MOA_GBAR_CHECK_ONLY=1
GB_ARGS="132,264 2,8 plain,fresh" run check1 10 MOA_GBAR_CHECK_ONLY=1 MOA_GBAR_CHECK_STEPS=1
# 2: times (A B B A per W and P), fresh beside plain and atomic.
GB_ARGS="132,264 8,64 fresh,plain,atomic" run time 20
el done; save
