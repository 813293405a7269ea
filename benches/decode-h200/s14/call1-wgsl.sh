#!/bin/bash
# Device call 1 for the WGSL decode (written in session 14, branch s14-wgsl, on a machine
# without a GPU: NOT YET RUN). SmolLM2-135M's decode (head_dim 64, GQA 9/3, 16 x 4096,
# plans/smollm2-135m-moa-50.toml) sits at 0.17-0.39 of a wgpu copy's rate, ~6 us fixed
# + ~5 us per 128-slot tile against ~1.6 us of bytes a tile: the serial chain per item is
# the limit (RESULTS "WGSL decode, session 13"). One binary, lists side by side:
#   base  = main's default (quad, paired sums, early V for GQA, f16 products, separate
#           merge dispatch),
#   k     = MOA_WGSL_ITEM_LOADS=k: the chunk's first tile's K loads issued with the work
#           item, before the row position, the queries and their barrier (first tile
#           peeled off the tile loop),
#   kv    = MOA_WGSL_ITEM_LOADS=kv: its K and V loads so (V in registers),
#   kvs   = MOA_WGSL_ITEM_LOADS=kv-shared: V parked in workgroup memory until the first
#           tile's P.V (16 KiB more, 28 KiB a workgroup: K's registers, kv's round trips),
#   nk    = MOA_WGSL_NEXT_K=1: each later tile's K issued right after the tile before's
#           Q.K (in flight through its softmax, barriers and P.V),
#   k-nk, kv-nk, kvs-nk = both.
# Predictions (before the call; a round trip under this load ~0.7-1.2 us):
#   k: one round trip per item: 0.7-1.2 us a layer step (layer 29, 15-18 us: 0.93-0.96x
#   base; layer 9, 26-28 us: 0.96-0.97x). kv: a further 0.3-0.6 us (the first tile's
#   early-V wait), registers ~128 as V first (4 workgroups per SM = 528 resident, still
#   one wave for these 320-448 items). nk: one round trip per later tile (layers 0/6: 1,
#   layer 9: 2): 0.96x / 0.93x, none on layer 29; registers up (next K held through P.V:
#   ~120-136; at > 128 3 per SM = 396 resident, and layer 9's 448 items need two waves:
#   then slower). kv-nk: layer 29 0.90-0.94x, 0/6 0.87-0.93x, 9 0.85-0.91x; SmolLM2 then
#   0.19-0.45 of the copy, still far below 0.70. kvs: as kv at k's registers (the stores
#   to workgroup memory wait for V, which arrives with the queries).
#   regs (layer 6, driver statistics): base 102, k 102-110, kv ~128, kvs 102-110,
#   nk 120-136, kv-nk 128-140, kvs-nk 120-136.
# Fused merge probe (why it won 0.887x in this bench but lost in the engine's step,
# 28.7-29.0 us a layer against 22.1-22.7 + 4.0-4.5): the bench times one layer's step
# repeated (its pipeline's code and its scratch hot; the separate merge is one pipeline
# for all layers), the engine's profile its 30 layers' decodes back to back (30 different
# decode binaries, the fused one each carrying its own merge tail). Two readings:
#   (1) layer mix: the four layers timed so far (29/0/6/9) are not the engine's 30 ->
#       per-layer rows of every third layer, fused against base;
#   (2) sequence: a layer's fused step is cheaper alone than among other layers ->
#       MOA_WGSL_SEQUENCE=1 times the same layers' steps back to back in one pass, each
#       layer its own list, caches and scratch, as the engine's profile does.
#   Decides: per-layer fused < base but sequence fused >= base -> (2) (code/scratch
#   locality across layers: a follow-up shares one merge tail or keeps the separate merge
#   for the engine); per-layer fused >= base on the layers not timed before -> (1) (the
#   merger's serial load rounds on layers with many chunks per segment).
# Carry folder .dev-s15-wgsl IN THE SESSION'S CHECKOUT (benches/decode-h200/s14/pack-wgsl.sh
# fills it): wgpu_decode_bench.gz (release, this branch), wgsl_table.py, gl/ (libvulkan1 +
# libglvnd/libGLX/EGL debs), this script.
#   bash .dev-s15-wgsl/call1-wgsl.sh      (run tool: carry [".dev-s15-wgsl"], timeout_s 150)
unset MOA_WGSL_DECODE
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-140}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/s15w1; rm -rf $R; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
( for f in $C/gl/*.deb; do dpkg -x $f /; done; ldconfig; ls /usr/local/nvidia/share/vulkan/icd.d/ ) > $R/vulkan-setup.txt 2>&1
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
S=plans/smollm2-135m-moa-50.toml
H=benches/decode-h200/wgsl-gqa-hd128.toml
B=/tmp/wgpu_decode_bench_s15
[ -x $B ] || { gzip -dc $C/wgpu_decode_bench.gz > $B && chmod +x $B; }
F0=MOA_WGSL_FUSED_MERGE=0
F1=MOA_WGSL_FUSED_MERGE=1
K=MOA_WGSL_ITEM_LOADS=k
KV=MOA_WGSL_ITEM_LOADS=kv
KVS=MOA_WGSL_ITEM_LOADS=kv-shared
NK=MOA_WGSL_NEXT_K=1
M0=MOA_WGSL_LAZY_MARGIN=0
# 1. The new forms against the CPU reference first (margin 0: the rescale path every tile;
# chunks as the host picks them, of 1 and 3 tiles, whole segments; f32 and f16).
{ env $KV $NK $M0 timeout $(cap 16) $B check plans/fixture-gqa.toml plans/fixture-mha.toml $H; echo "kv-nk margin 0 rc=$?"
  env $K $M0 timeout $(cap 8) $B check plans/fixture-gqa.toml $H; echo "k margin 0 rc=$?"
  env $KVS $NK $F1 $M0 timeout $(cap 8) $B check plans/fixture-gqa.toml; echo "kvs-nk fused margin 0 rc=$?"
} > $R/check.txt 2>&1
grep -E "rc=|FAIL|max" $R/check.txt | cut -c1-110; pack check
# 2. Registers of SmolLM2 layer 6's decode per form (driver statistics; base 102 in s13).
{ for v in "base:$F0" "k:$K" "kv:$KV" "kvs:$KVS" "nk:$NK" "kv-nk:$KV $NK" "kvs-nk:$KVS $NK"; do
    echo "== smollm2 ${v%%:*}"; env ${v#*:} timeout $(cap 5) $B regs $S - 6 2>&1 | tail -2
  done
} > $R/regs.txt 2>&1
grep -E "^==|regs layer 6|rror" $R/regs.txt | grep -oE "^==.*|Register_Count=[0-9]+|Binary_Size=[0-9]+|.*rror.*" | paste -sd' ' | sed 's/ ==/\n==/g'; pack regs
list() {
  local name=$1 secs=$2; shift 2
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  env "${envs[@]}" timeout $(cap $secs) $B "$@" > $R/$name.txt 2>&1
  echo "$name rc=$? $(grep -c '"wgpu-decode"' $R/$name.txt) rows $(grep -o '([0-9.]* s to build' $R/$name.txt)"
  pack $name
}
# 3. A warm-up list (the slow early configurations of sessions 9-13), then the A/B lists
# back to back, base at both ends; layer 1 thrown away in each.
SS="plan $S 1,29,0,6,9 16 4096"
list warm 6 $F0 -- plan $S 1 16 4096
# (A new form's pipelines are built cold, ~4-5 s for five layers; base's come from the
# driver's cache after the warm-up list.)
list base 6 $F0 -- $SS
list k 8 $F0 $K -- $SS
list kv 8 $F0 $KV -- $SS
list nk 8 $F0 $NK -- $SS
list k-nk 8 $F0 $K $NK -- $SS
list kv-nk 8 $F0 $KV $NK -- $SS
list kvs 8 $F0 $KVS -- $SS
list kvs-nk 8 $F0 $KVS $NK -- $SS
list base-aa 5 $F0 -- $SS
# 4. The fused merge probe: every third layer (1 thrown away), per layer and in sequence
# (~12 s and ~15 s: 11 layers' pipelines, then 11 rows and one sequence). Expected total
# ~130 s; each section's cap shrinks to what is left of END.
FL="plan $S 1,0,3,6,9,12,15,18,21,24,27 16 4096"
list seq-base 20 $F0 MOA_WGSL_SEQUENCE=1 -- $FL
list seq-fused 24 $F1 MOA_WGSL_SEQUENCE=1 -- $FL
T=$C/wgsl_table.py
{ python3 $T --skip 1 base=$R/base.txt k=$R/k.txt kv=$R/kv.txt nk=$R/nk.txt k-nk=$R/k-nk.txt kv-nk=$R/kv-nk.txt kvs=$R/kvs.txt kvs-nk=$R/kvs-nk.txt base-aa=$R/base-aa.txt
  python3 $T --skip 1 base=$R/seq-base.txt fused=$R/seq-fused.txt
  grep -h "^sequence of" $R/seq-base.txt $R/seq-fused.txt; } > $R/tables.txt 2>&1
cat $R/tables.txt; grep -h "scalar decode form" $R/*.txt | cut -c1-160 | sort | uniq -c
pack done
