#!/bin/bash
# Session 27, branch s27-attn, call 2 (one H200 through Vulkan): where call 1's +9.0..+9.5 us a
# layer of the output product in the merge (MOA_WGPU_OUT_IN_ATTN=1) go.
#   END=110 bash .dev-s27-attn/call2.sh   (run tool timeout_s >= END + 15; carry: wpe-diag.gz, the
#   release wgpu_products_engine of this branch with the diagnostics below, and the gl debs)
# TIMING DIAGNOSTICS (wrong results; in this call only): MOA_WGPU_OUT_IN_ATTN=d1 (D1): the
#   merge's product without its W_o loads (zeros: the 221 KB a merger from L2 not read; the
#   product's loop, shuffles, stores, the row counter and the row sum stay); d2 (D2): the
#   product with its W_o loads, no row counter and no row sum (x_alt not written).
# MODEL / PREDICTIONS (written before the call): call 1 put the tail at ~9 us on the attention
#   row against 2.5-3.5 modelled; the W_o stream (6 rounds of 9 loads a lane, L2 round trips
#   under the other workgroup's loads) is the larger part by the model: D1 20.5-23 us a layer
#   (most of the 9 gone), D2 26.5-28.5 (the row sum's ~1-2.5 us gone); O 29.0-29.5, def 19.6-20.3.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s27attn2}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-110}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s27-attn-${CALL:-call2}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wpe-diag.gz" > "$B/wpe" && chmod +x "$B/wpe" || { el "no wpe-diag.gz"; exit 1; }
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
A=${A:-"--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"}
envof() { case $1 in def*) echo "MOA_WGPU_COOP_ATTN=0";; O*) echo "MOA_WGPU_OUT_IN_ATTN=1";; D1*) echo "MOA_WGPU_OUT_IN_ATTN=d1";; D2*) echo "MOA_WGPU_OUT_IN_ATTN=d2";; esac; }
step() { local name=$1 par=$2 cap=$3; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name)" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: " "$R/$name.txt" | cut -c1-200 | head -2; save; }
RUNS=${RUNS:-"def1:0:24 O1:0:22 D1a:0:22 D2a:0:22 D2b:0:14 D1b:0:14 O2:0:14 def2:0:14"}
for r in $RUNS; do IFS=: read -r n p c <<< "$r"; step "$n" "$p" "$c"; done
summary() { printf "%-5s %6s %7s %5s %7s %6s %5s %5s %5s %5s\n" run tok/s ms/st disp dev_us attn qkv out gu down
  for r in $RUNS; do IFS=: read -r name _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    di=$(grep -o -E "[0-9]+ dispatches/step" "$t" | head -1 | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    printf "%-5s %6s %7s %5s %7s %6s %5s %5s %5s %5s\n" $name "${tok:--}" "${ms:--}" "${di:--}" "$(us step)" "$(per attention)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)"
  done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
