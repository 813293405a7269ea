#!/bin/bash
# Session 29, branch s29-attn, call 2 (one H200 through Vulkan; NOT RUN by s29-attn: its
# device time was spent; ready for the lead).
#   END=100 bash .dev-s29-attn/call2.sh   (run tool timeout_s >= END + 15; carry filled by
#   BIN=/tmp/s29-attn-bin bash benches/decode-h200/s29/attn/pack.sh, which also packs
#   wdb2.gz: the decode bench of this branch's head, with `lists` and MOA_WGSL_ITEMS)
# WHY: call 1's chunk sweep of layer 6 (fused decode, the engine's form) read 44.6 us at
#   768-slot chunks against 20.5 with every item merging itself (`all1`), where 512 read
#   18.2 against 17.3 (one run each). The engine's chunk model picks 768 for layers 9 and
#   21 at 16 x 4160 (`wgpu_decode_bench lists plans/smollm2-135m-moa-50.toml 16 4160`,
#   lists.txt), so if that is real it costs the step ~2 x 24 us (3%).
# 1. `lists` (CPU): each layer's chunk, items, whole chunks, most chunks a segment.
# 2. layers 6, 9, 21 (fused, words, class maxima; random caches; the decode dispatch
#    alone), chunks auto, 512, 640, 768, 896, items all and all1, twice (A A).
# 3. the 30 layers' steps back to back at the model's chunks (MOA_WGSL_SEQUENCE=only), the
#    engine's attention in one row, fused all; twice.
# PREDICTIONS (written before the call): if the 768 reading was real: layers 9 and 21 at
#   auto (768) all - all1 = +10..+25 us, layer 6 at 768 the same, 512/640 +0.5..+1.5; if a
#   fluke: all - all1 = +0.5..+1.5 everywhere and layer 6 at 768 19-22. The sequence row
#   19-21 us a layer (the engine's attention row is 19.7-20.1).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s29attn2}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-100}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s29-attn-${CALL:-call2}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wdb2.gz" > "$B/wdb2" && chmod +x "$B/wdb2" || { el "no wdb2.gz"; exit 1; }
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start
P=plans/smollm2-135m-moa-50.toml
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late MOA_WGSL_FUSED_MERGE=1 MOA_WGSL_SG_FLAT_WORDS=1 MOA_WGSL_SG_FLAT_CMAX=1 MOA_WGSL_KV_RANDOM=1 MOA_WGSL_PARTS=decode"
$B/wdb2 lists $P 16 4160 > "$R/lists.txt" 2>&1; el "lists rc=$?"
bench() { local name=$1 cap=$2 layers=$3; shift 3; left $(( cap + 2 )) || { el "skip bench $name"; return; }
  env $F "$@" timeout $cap $B/wdb2 plan $P $layers 16 4160 > "$R/bench-$name.txt" 2>&1
  el "bench $name rc=$?"; grep -E "^(layer|sequence)" "$R/bench-$name.txt" | sed -e 's/ B=16 prompt 4160 (N=4160, //' | cut -c1-140; save; }
for rep in a b; do
  bench chunks-$rep 25 6,9,21 MOA_WGSL_CHUNKS=auto,512,640,768,896 MOA_WGSL_ITEMS=all,all1
done
for rep in a b; do
  bench seq-$rep 25 "$(seq -s, 0 29)" MOA_WGSL_SEQUENCE=only
done
el done; save
