#!/bin/bash
# Session 34, branch s34-sg, call 1: the subgroup decode products with a fixed number of K steps
# a lane and KSPLIT fitted to K (MOA_WGPU_SG_FIT=1) against the default K loop.
#   END=150 bash .dev-s34-sg/call1.sh   (run tool timeout_s 180; carry .dev-s34-sg, filled by
#   BIN=/tmp/s34-sg-bin bash benches/decode-h200/s34/sg/pack.sh; binaries of the commit that
#   added MOA_WGPU_SG_FIT)
# SmolLM2 shape, random weights, 16 rows x 4096, 256 new tokens, moa-50, MOA_WGPU_COOP_ATTN=0.
# PER-LANE WORK TODAY (matvec_sg.wgsl at 8 rows, 32 lanes; read from the source): a trip loads
#  4 weight 4-vectors (f16, 8 regs) and 8 x 4-vectors (f32: 32 regs; out's f16 x 16) and does
#  2 x (mat4 x mat4 + add) = 128 multiply-adds + 32 adds into 32 independent sums (chains 4 deep
#  a trip) plus 16 multiplies by `live`. Trips: out K 576 at KSPLIT 8: ONE (subgroups 5-7 have
#  no K at all but run the 36-shuffle reduction; 4 is half live); down K 1536 at 8: two for
#  subgroups 0-3, one for 4-7; qkv K 576 at KSPLIT 4: two for subgroup 0 (16 lanes live), one
#  for 1-3. So the chain is short (1-2 trips, 4-8 deep) and at one trip all 12 loads fit 80
#  registers: neither reading (long chain, register-batched x) fits out; the trip loop is
#  generic (runtime K), so its sums are loop-carried. What differs from the loads-only twin
#  (DIAG 3, 44-60 regs) besides the multiply-adds: its sums are one vec4, so most of the
#  reduction's shuffles act on zeros (folded?), and shuffles issue 1 warp-instruction a clock
#  an SM (17.5 warps an SM x 36 = ~630 clocks, ~0.35 us for out/down), idle subgroups included.
# FORM F (MOA_WGPU_SG_FIT=1): STEPS fixed K steps a lane (no K loop: unrolled, no loop-carried
#  sums), KSPLIT = ceil(K/4 / (STEPS*32)): K 576 -> 5 subgroups x 1 step (out, qkv: 160
#  invocations), K 1536 -> 6 x 2 (down: 192). No idle subgroup; qkv's second trip gone.
# A = the default; F = MOA_WGPU_SG_FIT=1.
# MODEL (written before the call): main (s34-prod call 2, U): tok/s 11 217-11 404, qkv 5.65-5.89,
#  out 4.37-4.46, down 5.95-6.37 us a dispatch at --profile 5.
#  PREDICTED regs: F out/down-style 56-76 (one step, no carried sums), F RMSNorm form 80-104;
#   F two steps (6:1:8:2) 72-100. F's DIAG 3 twin 40-60.
#  F out 4.40 -> 4.0-4.4 (3 idle subgroups' reductions gone); qkv 5.7 -> 4.9-5.5 if its
#   registers stay <= 102 (4 workgroups of 160 an SM, 480 workgroups one wave; 60%), else
#   6.0-7.0 (two waves); down 6.1 -> 5.5-6.1. Step -15..-35 us: tok/s +1..+2.5%; F above A in
#   every pair: 50%. Parity 0.0496 +- 0.003 (KSPLIT changes the summation order), argmax 3/3.
#  S (F's split, one process): DIAG 1 (no steps) qkv ~3.3, out ~2.9, down ~2.9 (fewer subgroups
#   to reduce than main's 3.41/3.09/3.04); DIAG 3 within 0.3 us of F's DIAG 0 if the twin's
#   folded reduction was what the 0.9-1.2 us "multiply-adds" were.
# RUNS: regs; F1 A1 at --profile 5 --parity 24; S; then A2 F2 F3 A3 A4 F4 F5 A5 at --profile 5.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s34sg1}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-150}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s34-sg-${CALL:-call1}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wpe.gz" > "$B/wpe" && chmod +x "$B/wpe" || { el "no wpe.gz"; exit 1; }
gunzip -c "$D/wdb.gz" > "$B/wdb" && chmod +x "$B/wdb" || el "no wdb.gz"
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
{ timeout 20 $B/wdb regs-products 8:1:8,4:1:8,5:1:8:1,6:1:8:2; timeout 15 $B/wdb regs-products 5:1:8:1,6:1:8:2 3; } > "$R/regs.txt" 2>&1; el "regs rc=$?"
grep -E "^regs " "$R/regs.txt" | cut -c1-200
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
W=(--like smollm2-135m --rows 16 --new 256 --plan $P --prompt 4096)
envof() { case $1 in A*) echo "";; F*|S*) echo "MOA_WGPU_SG_FIT=1";; esac; }
step() { local name=$1 par=$2 prof=$3 cap=$4; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe "${W[@]}" --profile $prof --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|Error|error" "$R/$name.txt" | cut -c1-200 | head -4
  grep -o -E "decode products: [^)]*\)[^;]*" "$R/$name.txt" | head -1 | cut -c1-300; save; }
FIRST=${FIRST:-"F1:24:5:30 A1:24:5:30"}; LAST=${LAST:-"A2:0:5:20 F2:0:5:20 F3:0:5:20 A3:0:5:20 A4:0:5:20 F4:0:5:20 F5:0:5:20 A5:0:5:20"}; RUNS="$FIRST $LAST"
for r in $FIRST; do IFS=: read -r n p f c <<< "$r"; step "$n" "$p" "$f" "$c"; done
if left 45; then
  env $(envof S) timeout 40 $B/wpe "${W[@]}" --profile 5 --parity 0 --sg-variants "-:-:0;-:-:1;-:-:3;-:-:4;-:-:0" > "$R/S.txt" 2>&1; el "S rc=$?"
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
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; echo "$name $(grep -h 'row 0 tokens' $R/$name.txt | cut -c1-60) | $(grep -o -E 'decode products: [^(]*\([^)]*\)[^;]*' $R/$name.txt | head -1 | cut -c1-300)"; done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
