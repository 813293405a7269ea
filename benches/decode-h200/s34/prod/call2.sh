#!/bin/bash
# Session 34, branch s34-prod, call 2: the unchecked matrix-unit products as the default, in more
# pairs; the split's rows that call 1 could not read; KSPLIT 8 for the QKV product.
#   END=150 bash .dev-s34-prod/call2.sh   (run tool timeout_s 180; carry .dev-s34-prod, filled by
#   BIN=/tmp/s34-prod-bin bash benches/decode-h200/s34/prod/pack.sh; binaries of the commit that
#   made MOA_WGPU_COOP_DECODE_UNCHECKED=1 the default)
# SmolLM2 shape, random weights, 16 rows x 4096, 256 new tokens, moa-50, MOA_WGPU_COOP_ATTN=0.
# A = MOA_WGPU_COOP_DECODE_UNCHECKED=0 (main's checked gate/up); U = the branch's default
#     (unchecked); H = U + MOA_WGPU_COOP_HEAD=direct (the direct head, now unchecked too: one
#     profile row, not a candidate default).
# S = one process (the default), --sg-variants "-:-:0;-:-:4;8:-:0;-:-:0;8:-:0;-:-:4": DIAG 4
#     (weights-only K loop; call 1's row ran 2.4x slow as a whole) and KSPLIT 8 for every
#     subgroup product (the QKV product's auto is 4: at K 576 its second trip has 16 live lanes
#     of 128 in one subgroup; 8 gives 480 workgroups of 256 at 112 registers, 2 an SM: two waves).
# MODEL (written before the call): call 1: U 11 344-11 404 tok/s against A 11 194-11 248
#  (+1.45%); gate/up 7.38 against 7.70 us. PREDICTED: U above A in every pair again, +0.8..+2%
#  (80%); parity 0.0496, 3/3 in both. DIAG 4 qkv 4.1-4.6, out 2.9-3.4, down 4.0-4.6 (if not a
#  slow row again: 30%). KSPLIT 8: qkv 5.6 -> 5.2-6.2 (a coin flip; out and down unchanged, they
#  are 8 already). H: head 40-80 us (the direct head lost to the staged one when checked:
#  73-84 against 70 in s11-s12).
# RUNS: U1 A1 at --profile 5 --parity 24; H1 at --profile 5; S; then A2 U2 U3 A3 A4 U4 at
#  --profile 1 --parity 0.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s34prod2}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-150}
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
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
W=(--like smollm2-135m --rows 16 --new 256 --plan $P --prompt 4096)
U=""   # the default: unchecked
envof() { case $1 in A*) echo "MOA_WGPU_COOP_DECODE_UNCHECKED=0";; U*) echo "$U";; H*) echo "MOA_WGPU_COOP_HEAD=direct";; esac; }
step() { local name=$1 par=$2 prof=$3 cap=$4; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe "${W[@]}" --profile $prof --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|Error|error" "$R/$name.txt" | cut -c1-200 | head -4
  grep -o -E "decode products: [^)]*\)[^;]*;[^;]*;[^;]*" "$R/$name.txt" | head -1 | cut -c1-300; save; }
FIRST=${FIRST:-"U1:24:5:30 A1:24:5:30 H1:0:5:25"}; LAST=${LAST:-"A2:0:1:20 U2:0:1:20 U3:0:1:20 A3:0:1:20 A4:0:1:20 U4:0:1:20"}; RUNS="$FIRST $LAST"
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
