#!/bin/bash
# Session 32, branch s32-dec, call 1 (one H200 through Vulkan; the helper's only call).
#   END=210 bash .dev-s32-dec/call1.sh   (run tool timeout_s 230; carry .dev-s32-dec, filled by
#   BIN=/tmp/s32-dec-bin bash benches/decode-h200/s32/dec/pack.sh)
# The decode step (SmolLM2 shape, random weights, 16 x 4096, moa-50): 1.417-1.427 ms device
# (session 30, --new 64 --profile 5), 153 dispatches, 17.5% of the memory roofline; per
# dispatch: qkv 5.7-6.1 us, attention 19.9-20.3, out 4.4-4.8, gate_up 7.8-8.1, down 6.1-6.2;
# an empty dependent dispatch (probe) 2.18, a read-only one without barrier (probe_free) 0.19.
#
# HYPOTHESIS: the products are latency bound on DRAM round trips for their weights; reading
# the layer's product weights (out 0.66 MB, gate_up 3.5, down 1.8, the next layer's qkv 1.1:
# 7.1 MB) into L2 beside the attention's tail (two thirds of it is one item's chain, the
# memory system mostly idle) shortens them.
# B = MOA_WGPU_DECODE_PREFETCH=attn: one prefetch.wgsl dispatch (217 workgroups of 256, 16-byte
#     words, 8 an invocation) after each attention, no barrier before it (own sink buffer).
# C = MOA_WGPU_DECODE_PREFETCH=chain: one after each of attention / out / gate_up / down, for
#     the next product's weight (119 more dispatches a step).
# A = the same binary with MOA_WGPU_DECODE_PREFETCH=0 (main's dispatches exactly: the only
#     difference from main is one more pipeline compiled at load).
#
# MODEL (written before the call):
#  Evidence against, from the profile itself: the per-kind profile repeats a kind's 30
#  dispatches 5x in one submission, so out's 30 weights (20 MB) and qkv's (33 MB) are mostly
#  L2-resident from the 2nd repeat there, while gate_up's (106 MB) and down's (55 MB) are not;
#  and in the real step all four come from DRAM, yet the step (1417) equals the sum of the kinds
#  (1391 + head/argmax) within 2%. So out and qkv gain ~0 (their profile time is already
#  ~their L2 time), gate_up and down are the candidates: -0.5..-2 us each a layer.
#  The prefetch's own cost where it is serialized (the profile's "prefetch" kind, alone):
#  B ~ 30 x (launch ~2.2 + 7.1 MB / ~3 TB/s + ~1 latency) = 120-180 us; C 119 x ~3 = 300-420 us.
#  PREDICTED (real decode, 255 steps, ms/step and tok/s; the profile's step at --profile 1,
#  one step a submission, best of 3 -- at --profile 5 a prefetch's sink is rewritten by the
#  previous repeat, so wgpu puts a barrier before it and the step reads it serialized):
#   A: 1.42-1.46 ms/step, 10.3-10.9k tok/s (at N up to 4352: +1..3% against --new 64).
#   B: step -15..-60 us (gate_up + down -1..-3 us a layer; the attention +0..+1 where the
#      prefetch shares its tail); a loss if the prefetch outlasts the attention's tail.
#   C: -10..+40 us (119 more dispatches at ~0.2 us of front end each, +24; gains as B).
#   Parity unchanged: 0.0496, argmax 3/3 for all three (the same kernels compute).
# RUNS (one process each; random weights, 16 x 4096, moa-50, 256 greedy tokens,
#  MOA_WGPU_COOP_ATTN=0): A1 B1 C1 at --profile 5 --parity 24 (today's per-kind breakdown,
#  the prefetch kind alone), then C2 B2 A2 A3 B3 C3 C4 B4 A4 A5 B5 C5 C6 B6 A6 at --profile 1
#  --parity 0 (~7 s a run: ~150 s in all).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s32dec1}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-210}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s32-dec-${CALL:-call1}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wpe.gz" > "$B/wpe" && chmod +x "$B/wpe" || { el "no wpe.gz"; exit 1; }
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
envof() { case $1 in A*) echo "MOA_WGPU_DECODE_PREFETCH=0";; B*) echo "MOA_WGPU_DECODE_PREFETCH=attn";; C*) echo "MOA_WGPU_DECODE_PREFETCH=chain";; esac; }
step() { local name=$1 par=$2 prof=$3 cap=$4; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe --like smollm2-135m --rows 16 --new 256 --profile $prof \
    --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: " "$R/$name.txt" | cut -c1-200 | head -2; save; }
RUNS=${RUNS:-"A1:24:5:30 B1:24:5:30 C1:24:5:30 C2:0:1:20 B2:0:1:20 A2:0:1:20 A3:0:1:20 B3:0:1:20 C3:0:1:20 C4:0:1:20 B4:0:1:20 A4:0:1:20 A5:0:1:20 B5:0:1:20 C5:0:1:20 C6:0:1:20 B6:0:1:20 A6:0:1:20"}
for r in $RUNS; do IFS=: read -r n p f c <<< "$r"; step "$n" "$p" "$f" "$c"; done
summary() { printf "%-4s %6s %7s %5s %7s %6s %5s %5s %5s %5s %6s %s\n" run tok/s ms/st disp dev_us attn qkv out gu down pref parity
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    di=$(grep -o -E "[0-9]+ dispatches/step" "$t" | head -1 | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-4s %6s %7s %5s %7s %6s %5s %5s %5s %5s %6s %s\n" $name "${tok:--}" "${ms:--}" "${di:--}" "$(us step)" "$(per attention)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "$(per prefetch)" "${par:+$par,$arg}"
  done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
