#!/bin/bash
# Session 35, lead call 1 (one H200 through Vulkan): would the decode attention be much faster if
# its K/V were already in L2? The products (qkv, out, gate/up, down: ~22 us a layer) read ~7 MB
# and are latency-bound, so the memory system idles during them; a prefetch of the next layer's
# K/V (25.9 MB a layer at 16 x 4096, moa-50; the H200's L2 is 50-60 MB) into L2 there could turn
# the attention's DRAM reads into L2 reads. Worth building only if L2-warm K/V make the attention
# dispatch much shorter. New knob: MOA_WGSL_KV_COPIES (examples/wgpu_decode_bench.rs; 1 = the
# same caches every dispatch, L2-warm where they fit; default: rotated past the L2, as the step).
#   bash .dev-lead35/call1.sh   (carry [".dev-lead35"]; run tool timeout_s 170)
# Runs: `stream 25.9` rotated and warm; layer 6 and 9 (16 rows, N 4160, the engine's fused flat
# form, random caches, the decode dispatch alone) rotated / warm / rotated / warm; 8 rows (13 MB)
# rotated / warm.
# MODEL and PREDICTION (written before the call): the attention dispatch is ~18 us in this bench
# (rotated), ~2.2 of it the dispatch floor; session 29: one 512-slot item alone 9.7 us, "two
# thirds of the dispatch is one item's chain" (~10 dependent round trips: words, queries, 4 steps
# of K then V, the merge). A DRAM round trip ~0.6-0.8 us under load, an L2 one ~0.25-0.35: warm
# saves 3-5 us -> warm layer 6 at 12-15 us against 17.5-18.5 rotated. If warm >= 16.5 the lever
# is dead (the chain is not the loads' latency). Stream (grid 256 x 4): warm 2-3x the rotated rate.
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/s35lead1; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s35-lead1.tgz" -C "$R" .; cp "$R/times.txt" "$R/summary.txt" "${OUT:-/tmp}/" 2>/dev/null; }
gunzip -c "$D/wdb.gz" > /tmp/wdb && chmod +x /tmp/wdb
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
P=plans/smollm2-135m-moa-50.toml
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late MOA_WGSL_FUSED_MERGE=1 MOA_WGSL_SG_FLAT_WORDS=1 MOA_WGSL_SG_FLAT_CMAX=1 MOA_WGSL_KV_RANDOM=1 MOA_WGSL_PARTS=decode"
el start
for c in 0 1; do
  if [ $c = 0 ]; then unset MOA_WGSL_KV_COPIES; else export MOA_WGSL_KV_COPIES=1; fi
  timeout 30 /tmp/wdb stream 25.9 > "$R/stream-c$c.txt" 2>&1; el "stream copies=$c rc=$?"
done
unset MOA_WGSL_KV_COPIES
run() { local name=$1 rows=$2; shift 2
  env $F "$@" timeout 30 /tmp/wdb plan $P 6,9 $rows 4160 > "$R/$name.txt" 2>&1; el "$name rc=$?"
  { echo "== $name rows=$rows $*"; grep -E "^layer" "$R/$name.txt" | cut -c1-200; } >> "$R/summary.txt"; }
run cold1 16; run warm1 16 MOA_WGSL_KV_COPIES=1; run cold2 16; run warm2 16 MOA_WGSL_KV_COPIES=1
run cold8 8; run warm8 8 MOA_WGSL_KV_COPIES=1
{ echo "== stream rotated"; cat "$R/stream-c0.txt"; echo "== stream warm"; cat "$R/stream-c1.txt"; } >> "$R/summary.txt"
save
