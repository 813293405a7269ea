#!/bin/bash
# Session 30, branch s30-attn, call 1 (one H200 through Vulkan; the helper's only call).
#   END=165 bash .dev-s30-attn/call1.sh   (run tool timeout_s 180; carry .dev-s30-attn, filled by
#   BIN=/tmp/s30-attn-bin bash benches/decode-h200/s30/attn/pack.sh)
# The decode step (SmolLM2 shape, 16 x 4096, moa-50): 1.408-1.421 ms device, 153 dispatches,
# 17.6% of the memory roofline; the attention (flat form, fused merge, words, class maxima,
# 126 registers: 2 workgroups of 256 an SM) 19.7-20.1 us a layer. Session 29: two thirds of
# the decode dispatch is one 512-slot item's chain (9.7 us alone, unfused).
#
# MODEL (written before the call):
#  An item's chain (layer 6: 512-slot chunks, 8 subgroups of 32, 16-slot steps, 128-slot
#  rounds -> 4 steps a subgroup), dependent round trips in series:
#    launch/floor ~2.2 | work words (L2) | row position + queries (L2) |
#    per step: K (DRAM) -> scores, butterfly, class maxima -> V (DRAM) -> P.V      x 4
#    | combine (barrier) | partial stores, barrier, counter (L2) | merger: partials (L2),
#    O, EMPTY.
#  Default: 2 DRAM round trips a step = 8 in series; with s29's 9.7 us alone =
#  2.2 + ~1 (words, q) + 4 x (2 RT + ~0.35 math) + ~1 (combine, partial) -> RT ~0.5 us.
#  L (MOA_WGSL_SG_FLAT_LAG=1, V a step behind): each step issues its K and the previous
#  step's V together: K0 | K1+V0 | K2+V1 | K3+V2 | V3 = 5 round trips in series, not 8
#  (-3 x ~0.5 = -1.5 us on a lone item), at 2 x 4 loads a lane in flight (as session 28's
#  prefetch P, which read 127 registers).
#  PREDICTED: registers L 124-132 (P was 127; if > 128 the call takes LQ = L + packed
#  queries, predicted 100-110); decode bench (fused, random caches) one 512-slot item alone
#  (long:1) def 9.5-11, L -1.0..-1.8; the whole list (all) def 17.5-19 (layer 6), L
#  -0.5..-1.5 (P: -0.9 in this bench); the engine's attention L -1.0..+0.5 us a layer
#  (P: +0.1..+1.9, no pair won: a tie is the likely outcome), device step -30..+15 us.
#  Parity L 0.045-0.055, argmax 3/3 (same products, other order of the adds).
#  768-slot reading (s29's call2, folded in): if real, layers 9 and 21 at auto (768) all -
#  all1 = +10..+25 us and layer 6 at 768 the same, 512/640 +0.5..+1.5; if a fluke, all -
#  all1 = +0.5..+1.5 everywhere and layer 6 at 768 19-22 us. Discriminators at 768: the
#  separate merge's decode and merge dispatches alone (if the decode alone is ~all1's -3 and
#  the merge ~3, the fused protocol is what costs). The 30-layer sequence at the model's
#  chunks 19-21 us a layer (the engine's attention row is 19.7-20.1).
# STEPS: 1 lists; 2 chunk sweep x2 (a, b) + discriminators; 3 sequence x2; 4 regs def, L,
#  LQ, E (early form, for the record); X = L if <= 128 registers else LQ; check X; 5 decode
#  bench def X X def (layers 6, 9, 21, auto, all and long:1); 6 engine def1 X1 X2 def2 def3 X3
#  [X4 def4] (random weights, 16 x 4096, moa-50, 64 greedy tokens, --profile 5,
#  MOA_WGPU_COOP_ATTN=0; the first pair with --parity 24).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s30attn1}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-165}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s30-attn-${CALL:-call1}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "$B/$b" && chmod +x "$B/$b" || { el "no $b.gz"; exit 1; }; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start
P=plans/smollm2-135m-moa-50.toml
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late MOA_WGSL_FUSED_MERGE=1 MOA_WGSL_SG_FLAT_WORDS=1 MOA_WGSL_SG_FLAT_CMAX=1"
L=MOA_WGSL_SG_FLAT_LAG=1; QP=MOA_WGSL_SG_FLAT_QPACK=1
declare -A VE=([def]="" [L]="$L" [LQ]="$L $QP" [E]="MOA_WGSL_SG_FLAT=1")
# 1-3: the 768-slot reading (s29-attn's call2.sh, steps 1-3) and its discriminators.
$B/wdb lists $P 16 4160 > "$R/lists.txt" 2>&1; el "lists rc=$?"
bench() { local name=$1 cap=$2 layers=$3; shift 3; left $(( cap + 2 )) || { el "skip bench $name"; return; }
  env $F MOA_WGSL_KV_RANDOM=1 "$@" timeout $cap $B/wdb plan $P $layers 16 4160 > "$R/bench-$name.txt" 2>&1
  el "bench $name rc=$?"; grep -E "^(layer|sequence)" "$R/bench-$name.txt" | sed -e 's/ B=16 prompt 4160 (N=4160, //' | cut -c1-140; save; }
bench chunks-a 25 6,9,21 MOA_WGSL_PARTS=decode MOA_WGSL_CHUNKS=auto,512,640,768,896 MOA_WGSL_ITEMS=all,all1
bench sep768 12 6,9,21 MOA_WGSL_FUSED_MERGE=0 MOA_WGSL_PARTS=decode,merge MOA_WGSL_CHUNKS=512,768
bench chunks-b 25 6,9,21 MOA_WGSL_PARTS=decode MOA_WGSL_CHUNKS=auto,512,640,768,896 MOA_WGSL_ITEMS=all,all1
bench seq-a 20 "$(seq -s, 0 29)" MOA_WGSL_PARTS=decode MOA_WGSL_SEQUENCE=only
bench seq-b 20 "$(seq -s, 0 29)" MOA_WGSL_PARTS=decode MOA_WGSL_SEQUENCE=only
# 4: registers, the choice of X, its check.
declare -A RG
for n in def L LQ E; do
  r=$(env $F ${VE[$n]} timeout 20 $B/wdb regs $P - 6 2>&1 | grep -m1 -E "^regs layer [0-9]|error")
  echo "$n $r" >> "$R/regs.txt"; el "regs $n: $(echo "$r" | grep -o -E "Register_Count=[0-9]+|error.*" | head -1)"
  RG[$n]=$(echo "$r" | grep -o -E "Register_Count=[0-9]+" | head -1 | cut -d= -f2)
done
X=${X:-}; [ -z "$X" ] && { if [ -n "${RG[L]}" ] && [ "${RG[L]}" -le 128 ]; then X=L; else X=LQ; fi; }
el "X = $X (${VE[$X]}; registers ${RG[$X]:-?})"; echo "X=$X ${VE[$X]}" > "$R/choice.txt"
env $F ${VE[$X]} timeout 20 $B/wdb check plans/fixture-gqa.toml plans/fixture-mha.toml > "$R/check-$X.txt" 2>&1
el "check $X rc=$?: $(grep -E 'max .error|check pass|check FAIL' "$R/check-$X.txt" | grep -o -E 'max .error. [0-9.e-]+|check [a-zA-Z]+' | tr '\n' ' ')"
save
# 5: the decode bench, def X X def (layers 6, 9, 21 at the model's chunk, all and one item).
for n in def1 X1 X2 def2; do case $n in def*) v="";; X*) v="${VE[$X]}";; esac
  bench form-$n 14 6,9,21 $v MOA_WGSL_PARTS=decode MOA_WGSL_ITEMS=all,long:1; done
# 6: the engine's step, A B B A.
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
envof() { case $1 in def*) echo "MOA_WGPU_COOP_ATTN=0";; X*) echo "${VE[$X]}";; esac; }
step() { local name=$1 par=$2 cap=$3; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name)" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: " "$R/$name.txt" | cut -c1-200 | head -2; save; }
RUNS=${RUNS:-"def1:24:32 X1:24:24 X2:0:14 def2:0:14 def3:0:14 X3:0:14 X4:0:14 def4:0:14"}
for r in $RUNS; do IFS=: read -r n p c <<< "$r"; step "$n" "$p" "$c"; done
summary() { printf "%-5s %6s %7s %5s %7s %6s %5s %5s %5s %5s %s\n" run tok/s ms/st disp dev_us attn qkv out gu down parity
  for r in $RUNS; do IFS=: read -r name _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    di=$(grep -o -E "[0-9]+ dispatches/step" "$t" | head -1 | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-5s %6s %7s %5s %7s %6s %5s %5s %5s %5s %s\n" $name "${tok:--}" "${ms:--}" "${di:--}" "$(us step)" "$(per attention)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "${par:+$par,$arg}"
  done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
