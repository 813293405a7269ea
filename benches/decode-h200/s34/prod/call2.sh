#!/bin/bash
# Session 34, branch s34-prod, call 2: the unchecked matrix-unit products as the default, in more
# pairs; the output product on matrix units with its fragment loads hoisted; the split's rows that
# call 1 could not read; KSPLIT 8 for the QKV product.
#   END=165 bash .dev-s34-prod/call2.sh   (run tool timeout_s 190; carry .dev-s34-prod, filled by
#   BIN=/tmp/s34-prod-bin bash benches/decode-h200/s34/prod/pack.sh; binaries of the commit that
#   added MOA_WGPU_COOP_OUT_HOIST, MOA_WGPU_COOP_DECODE_UNCHECKED=1 the default)
# SmolLM2 shape, random weights, 16 rows x 4096, 256 new tokens, moa-50, MOA_WGPU_COOP_ATTN=0.
# regs: `wdb regs-coop 576 576` (now with the hoisted direct walk) and `wdb regs-products 8:1:8 D`
#   for D = 3 and 4 (the loads-only twins: are their registers below the real form's 80?).
# A = MOA_WGPU_COOP_DECODE_UNCHECKED=0 (main's checked gate/up); U = the branch's default
#     (unchecked); O = MOA_WGPU_COOP_DECODE=1 (the output product on matrix units, direct walk,
#     unchecked: call 1's O); X = O + MOA_WGPU_COOP_OUT_HOIST=1 (its 9 A fragments loaded with its
#     9 B fragments, then a workgroup barrier, then the 9 multiply-adds).
# S = one process (the default), --sg-variants "-:-:0;-:-:4;8:-:0;-:-:0;8:-:0;-:-:4": DIAG 4
#     (weights-only K loop; call 1's row ran 2.4x slow as a whole) and KSPLIT 8 for every
#     subgroup product (the QKV product's auto is 4: at K 576 its second trip has 16 live lanes
#     of 128 in one subgroup; 8 gives 480 workgroups of 256 at 112 registers, 2 an SM: two waves).
# MODEL (written before the call): call 1: U 11 344-11 404 tok/s against A 11 194-11 248
#  (+1.45%); gate/up 7.38 against 7.70 us. O: out 5.09-5.12 us against 4.40-4.69 on subgroups.
#  The direct walk read 41 registers (the staged one 112, gate/up 219): its 18 fragment loads
#  cannot all be in flight, so the driver sank them to their multiply-adds (a chain of loads).
#  PREDICTED: U above A in every pair again, +0.8..+2% (80%); parity 0.0496, 3/3.
#  X: registers 80-120 (the 18 fragments live: 72 + the accumulator); out 5.1 -> 3.8-4.6 (50% that
#  it beats the subgroup out's 4.35, i.e. X's tok/s above U's); parity 0.0506 (as O), 3/3.
#  regs DIAG 3 / 4: 50-72 registers (below 80: the real form's x loads wait on registers).
#  DIAG 4 qkv 4.1-4.6, out 2.9-3.4, down 4.0-4.6 (if not a slow row again: 30%).
#  KSPLIT 8: qkv 5.6 -> 5.2-6.2 (a coin flip; out and down unchanged, they are 8 already).
# RUNS: regs; U1 A1 X1 at --profile 5 --parity 24; O1 at --profile 5; S; then
#  A2 U2 X2 U3 A3 X3 A4 U4 X4 at --profile 1 --parity 0.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s34prod2}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-165}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s34-prod-${CALL:-call2}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wpe.gz" > "$B/wpe" && chmod +x "$B/wpe" || { el "no wpe.gz"; exit 1; }
gunzip -c "$D/wdb.gz" > "$B/wdb" && chmod +x "$B/wdb" || el "no wdb.gz"
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
{ timeout 20 $B/wdb regs-coop 576 576; timeout 15 $B/wdb regs-products 8:1:8 3; timeout 15 $B/wdb regs-products 8:1:8 4; } > "$R/regs.txt" 2>&1; el "regs rc=$?"
grep -E "^regs " "$R/regs.txt" | cut -c1-200
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
W=(--like smollm2-135m --rows 16 --new 256 --plan $P --prompt 4096)
U=""   # the default: unchecked
envof() { case $1 in A*) echo "MOA_WGPU_COOP_DECODE_UNCHECKED=0";; U*) echo "$U";; O*) echo "MOA_WGPU_COOP_DECODE=1";;
  X*) echo "MOA_WGPU_COOP_DECODE=1 MOA_WGPU_COOP_OUT_HOIST=1";; esac; }
step() { local name=$1 par=$2 prof=$3 cap=$4; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe "${W[@]}" --profile $prof --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|Error|error" "$R/$name.txt" | cut -c1-200 | head -4
  grep -o -E "decode products: [^)]*\)[^;]*;[^;]*;[^;]*" "$R/$name.txt" | head -1 | cut -c1-300; save; }
FIRST=${FIRST:-"U1:24:5:30 A1:24:5:30 X1:24:5:30 O1:0:5:25"}; LAST=${LAST:-"A2:0:1:20 U2:0:1:20 X2:0:1:20 U3:0:1:20 A3:0:1:20 X3:0:1:20 A4:0:1:20 U4:0:1:20 X4:0:1:20"}; RUNS="$FIRST $LAST"
for r in $FIRST; do IFS=: read -r n p f c <<< "$r"; step "$n" "$p" "$f" "$c"; done
if left 45; then
  timeout 45 $B/wpe "${W[@]}" --profile 5 --parity 0 --sg-variants "-:-:0;-:-:4;8:-:0;-:-:0;8:-:0;-:-:4" > "$R/S.txt" 2>&1; el "S rc=$?"
  grep -E "^variant|^ *(qkv|out|gate_up|down|attention|probe|step):" "$R/S.txt" | cut -c1-120; save
fi
for r in $LAST; do IFS=: read -r n p f c <<< "$r"; step "$n" "$p" "$f" "$c"; done
summary() { printf "%-4s %6s %6s %5s %7s %6s %5s %5s %5s %5s %6s %s\n" run tok/s ms/st disp dev_us attn qkv out gu down head parity
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    di=$(grep -o -E "[0-9]+ dispatches/step" "$t" | head -1 | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-4s %6s %6s %5s %7s %6s %5s %5s %5s %5s %6s %s\n" $name "${tok:--}" "${ms:--}" "${di:--}" "$(us step)" "$(per attention)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "$(per head)" "${par:+$par,$arg}"
  done
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; echo "$name $(grep -h 'row 0 tokens' $R/$name.txt | cut -c1-60) | $(grep -o -E 'decode products: [^(]*\([^)]*\)[^;]*(;[^;]*){0,4}' $R/$name.txt | head -1 | cut -c1-400)"; done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
