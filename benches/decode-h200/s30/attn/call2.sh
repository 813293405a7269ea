#!/bin/bash
# Session 30, branch s30-attn, call 2 (one H200 through Vulkan; NOT RUN: the helper's device
# time was spent on call 1; ready for the lead or a later session, ~40 s of command).
#   END=60 bash .dev-s30-attn/call2.sh   (run tool timeout_s 75; carry .dev-s30-attn, filled by
#   BIN=/tmp/s30-attn-bin bash benches/decode-h200/s30/attn/pack.sh with any head's
#   release wgpu_decode_bench: only knobs already on main are used)
# WHY: call 1 found one item alone no faster with fewer dependent round trips (V a step
#   behind), and from one item alone at 512 and 768 slots ~6.4 us that do not scale with
#   the slots plus ~1.1 us a 128-slot round of steps. This call splits that lone item.
# Rows (layer 6, 16 x 4160, random caches, the separate merge's decode dispatch alone,
#   MOA_WGSL_ITEMS=long:1 (the longest item alone) and all, chunks 256, 384, 512, 768):
#   def (the engine's form unfused), read (MOA_WGSL_SG_DECODE=read: its loads only),
#   nocomb (MOA_WGSL_SG_NO_COMBINE=1: no workgroup combine); each in two processes (a, b),
#   since call 1 saw rows > 5 us apart between processes.
# PREDICTIONS (written before the call): def long:1 9.0-10.5 at 512 (s29: 9.7 unfused),
#   slope ~1.1 us a 128-slot round, intercept 5-7 us; read long:1 1-2 us under def at
#   every length with a smaller slope (0.5-0.8: the math is what a round adds beyond its
#   loads); nocomb within 0.3 of def (s24: the combine <= 0.3). If read's intercept is as
#   large as def's, the fixed part is the launch, the words and the queries (the chain
#   before the first K) and the partial's stores, not the math.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s30attn2}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-60}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s30-attn-${CALL:-call2}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wdb.gz" > "$B/wdb" && chmod +x "$B/wdb" || { el "no wdb.gz"; exit 1; }
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start
P=plans/smollm2-135m-moa-50.toml
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late MOA_WGSL_FUSED_MERGE=0 MOA_WGSL_SG_FLAT_WORDS=1 MOA_WGSL_SG_FLAT_CMAX=1 MOA_WGSL_KV_RANDOM=1 MOA_WGSL_PARTS=decode"
bench() { local name=$1 cap=$2; shift 2; left $(( cap + 2 )) || { el "skip bench $name"; return; }
  env $F "$@" MOA_WGSL_CHUNKS=256,384,512,768 MOA_WGSL_ITEMS=long:1,all timeout $cap $B/wdb plan $P 6 16 4160 > "$R/bench-$name.txt" 2>&1
  el "bench $name rc=$?"; grep -E "^layer" "$R/bench-$name.txt" | sed -e 's/ B=16 prompt 4160 (N=4160, //' | cut -c1-140; save; }
for rep in a b; do
  bench def-$rep 12
  bench read-$rep 12 MOA_WGSL_SG_DECODE=read
  bench nocomb-$rep 12 MOA_WGSL_SG_NO_COMBINE=1
done
el done; save
