#!/bin/bash
# Session 27, branch s27-attn, call 1 (one H200 through Vulkan).
#   END=150 bash .dev-s27-attn/call1.sh   (run tool timeout_s >= END + 15; carry filled by
#   benches/decode-h200/s27/attn/pack.sh with this branch's binaries)
# The engine's decode step (SmolLM2 shape, 16 x 4096, moa-50): 1.42-1.46 ms, 153 dispatches,
# 5 a layer: qkv, attention (flat form, fused merge), out (product + residual, 4.1-4.8 us),
# gate/up, down. Products are latency-bound: each dependent dispatch pays fill and drain.
# NEW (opt-in, this branch): MOA_WGPU_OUT_IN_ATTN=1 (O; = x3) / x6 (X): each segment's merger
#   (the fused merge's last item, which holds O of its GQA group's 3 heads, 192 values) forms
#   o_g . W_o[:, g*192 .. +192]^T (576 outputs, 8 lanes an output, 24 16-byte words of W_o an
#   output, 221 KB of W_o from L2 a segment; 18 passes of 32 outputs, 3 (x3) or 6 (x6) passes'
#   loads issued at once) and stores it as f32 words per (row, KV head); the row's last of its 3
#   segments (a per-row counter) adds x + the 3 products into x_alt. The out dispatch goes:
#   4 dispatches a layer, 123 a step.
# MODEL (written before the call):
#   saved: the out dispatch, 4.1-4.8 us a layer (its fill/drain 2.2-3.3 of it).
#   added, on the attention's critical path after the last segment's merge: the product's W_o
#   stream, 221 KB a merger at an SM's ~64 B/clk from L2 (~110 GB/s) = ~2.0 us (48 mergers,
#   10.6 MB from L2 in all, spread over 132 SMs; the last ones at the dispatch's end), the row
#   sum (3 polled loads + x a lane-output, 576 outputs over 256 lanes: ~3 L2 round trips,
#   ~0.5-1 us): +2.5..+3.5 us a layer on the attention row. Nothing added to gate/up or down
#   (they read x_alt as before).
#   registers: the tail's live set (O 24 f32 + 9 (x3) / 18 (x6) words x 4 + ~10) is below the
#   main loop's (~124): the kernel's count unchanged (126, class maxima + words + fused).
#   net: -0.9..-1.9 us a layer = step -27..-57 us (30 layers), tokens/s +2..+4%.
# 1. regs (layer 6, subgroup 32, fused + words + class maxima as the engine) of def, O, X.
# 2. the engine's step (random weights, 16 x 4096, moa-50, 64 greedy tokens, --profile 5,
#    MOA_WGPU_COOP_ATTN=0), one process a run: def1 O1 (parity 24) | O2 def2 | def3 O3 |
#    O4 def4 (A B B A), then X1 X2 if time is left.
# PREDICTIONS:
#   regs: def 126; O 126 (122-128); X 126 (122-128); none above 128 (else 1 workgroup an SM).
#   def: attention 19.7-20.3 us a layer, out 4.1-4.8, step 1.42-1.46 ms, parity 0.0496, 3/3.
#   O: attention 22.2-23.8 us a layer, no out row, 123 dispatches, step -27..-57 us against
#     its pair, tok/s +2..+4%; parity 0.045-0.055 (O kept in f32 into the product), 3/3.
#   X: within +-0.5 us a layer of O (the stream, not the batch, bounds the tail).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s27attn1}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-150}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s27-attn-${CALL:-call1}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "$B/$b" && chmod +x "$B/$b" || { el "no $b.gz"; exit 1; }; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start
P=plans/smollm2-135m-moa-50.toml
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late MOA_WGSL_FUSED_MERGE=1 MOA_WGSL_SG_FLAT_WORDS=1 MOA_WGSL_SG_FLAT_CMAX=1"
declare -A VE=([def]="" [O]="MOA_WGPU_OUT_IN_ATTN=1" [X]="MOA_WGPU_OUT_IN_ATTN=x6")
for n in def O X; do
  r=$(env $F ${VE[$n]} timeout 20 $B/wdb regs $P - 6 2>&1 | grep -m1 -E "^regs layer [0-9]|error")
  echo "$n $r" >> "$R/regs.txt"; el "regs $n: $(echo "$r" | cut -c1-160)"
done
save
export MOA_WGPU_COOP_ATTN=0
A=${A:-"--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"}
envof() { case $1 in def*) echo "MOA_WGPU_COOP_ATTN=0";; O*) echo "${VE[O]}";; X*) echo "${VE[X]}";; esac; }
step() { local name=$1 par=$2 cap=$3; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name)" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: " "$R/$name.txt" | cut -c1-200 | head -2; save; }
RUNS=${RUNS:-"def1:24:32 O1:24:22 O2:0:14 def2:0:14 def3:0:14 O3:0:14 O4:0:14 def4:0:14 X1:0:14 X2:0:14"}
for r in $RUNS; do IFS=: read -r n p c <<< "$r"; step "$n" "$p" "$c"; done
summary() { printf "%-5s %6s %7s %5s %7s %6s %6s %5s %5s %5s %5s %s\n" run tok/s ms/st disp dev_us attn merge qkv out gu down parity
  for r in $RUNS; do IFS=: read -r name _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    di=$(grep -o -E "[0-9]+ dispatches/step" "$t" | head -1 | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-5s %6s %7s %5s %7s %6s %6s %5s %5s %5s %5s %s\n" $name "${tok:--}" "${ms:--}" "${di:--}" "$(us step)" "$(per attention)" "$(per merge)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "${par:+$par,$arg}"
  done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
