#!/bin/bash
# Session 34, branch s34-head, call 1: the decode's LM head (coop_head.wgsl) in one wave.
#   END=135 bash .dev-s34-head/call1.sh   (run tool timeout_s 145; carry .dev-s34-head, filled by
#   BIN=/tmp/s34-head-bin bash benches/decode-h200/s34/head/pack.sh; binaries of the commit that
#   added MOA_WGPU_COOP_HEAD_ROLL and MOA_WGPU_COOP_HEAD_LATE0)
# SmolLM2 shape, random weights, 16 rows x 4096, 256 new tokens, moa-50, MOA_WGPU_COOP_ATTN=0.
# regs: `wdb regs-head 576`: the default (KS 192, 2 blocks, unchecked: 247 in session 33), 3 blocks,
#   and the new forms at 2 blocks: ROLL r (the multiply-add loop bound through the uniforms, r
#   fragment pairs a trip, not unrolled) for r = 1, 2, 3, 4, 6, LATE0 (stage 0's weights fetched
#   after x is staged), and ROLL r + LATE0 for r = 1..4.
# U = the default; B = MOA_WGPU_COOP_HEAD_BLOCKS=3 (256 workgroups: one wave at 2 an SM);
# R = the new form chosen from regs before the runs: of the ROLL / LATE0 forms at 2 blocks, the
#     one with the largest ROLL at <= 168 registers (3 workgroups an SM: 396 slots for 384, one
#     wave; LATE0 only where needed), else the fewest registers.
# MODEL (written before the call): 247 registers = the 12 weight registers of the next stage
#  (48) beside either (a) the stage's 12 A + 12 B fragments the driver loads ahead of the unrolled
#  multiply-adds (96 + the accumulator's 8) or (b) x staging's 18 x + 18 norm 4-vectors (144)
#  with stage 0's 48; KS 96 read 207 (-40 for half of both). ROLL cuts (a) only, LATE0 (b)'s 48.
#  PREDICTED regs: U 247, B 247; ROLL 1..2: 150-210; ROLL 1 + LATE0: 120-170; 55% that some form
#  fits <= 168. Head (profile 5): U 31.5 (26-39 at profile 1), B 28.5-31, R 20-28 if one wave
#  (each stage's 12 multiply-adds a serial chain either way, the loop's trip ~+60 cycles a stage
#  hidden by 3 workgroups an SM), 30-36 if still two waves. tok/s: R - U +0.0..+0.8% (a head at
#  -5 us is -0.35% of the 1.44 ms step), 40% that R is above U in every pair; B - U +-0.3% (a tie).
#  Parity 0.0496, argmax 3/3 for every form (the same products in the same order).
# RUNS: regs; U1 B1 R1 at --profile 5 --parity 24; then U2 R2 B2 R3 U3 B3 B4 R4 U4 at --profile 1.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s34head1}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-135}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s34-head-${CALL:-call1}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wpe.gz" > "$B/wpe" && chmod +x "$B/wpe" || { el "no wpe.gz"; exit 1; }
gunzip -c "$D/wdb.gz" > "$B/wdb" && chmod +x "$B/wdb" || el "no wdb.gz"
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
timeout 25 $B/wdb regs-head 576 > "$R/regs.txt" 2>&1; el "regs rc=$?"
grep -E "^regs " "$R/regs.txt" | sed -E 's/exec0=[^,]*, //; s/, Binary_Size=[0-9]+//; s/, Stack_Size=0//; s/, Local_Memory_Size=[0-9]+//'
# R's form: "roll late0" from regs (BPW 2, unchecked, ROLL > 0 or LATE0 1).
pick=$(grep -E "BPW 2 ROLL [0-9] LATE0 [01] checked=false" "$R/regs.txt" | sed -E 's/.*ROLL ([0-9]) LATE0 ([01]).*Register_Count=([0-9]+).*/\1 \2 \3/' \
  | awk '$1 > 0 || $2 > 0' | awk '{ if ($3 <= 168) k = 1000 + 10 * $1 - $2; else k = -$3 + $1 / 10; print k, $1, $2, $3 }' | sort -g -r | head -1)
RR=$(echo "$pick" | cut -d' ' -f2); RL=$(echo "$pick" | cut -d' ' -f3); RR=${RR:-2}; RL=${RL:-0}
el "R = ROLL $RR LATE0 $RL ($(echo "$pick" | cut -d' ' -f4) registers)"
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
W=(--like smollm2-135m --rows 16 --new 256 --plan $P --prompt 4096)
envof() { case $1 in U*) echo "";; B*) echo "MOA_WGPU_COOP_HEAD_BLOCKS=3";;
  R*) echo "MOA_WGPU_COOP_HEAD_ROLL=$RR MOA_WGPU_COOP_HEAD_LATE0=$RL";; esac; }
step() { local name=$1 par=$2 prof=$3 cap=$4; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe "${W[@]}" --profile $prof --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|Error|error|start-up check" "$R/$name.txt" | cut -c1-200 | head -4
  grep -o -E "coop_head\.wgsl[^)]*\)" "$R/$name.txt" | head -1 | cut -c1-300; save; }
FIRST=${FIRST:-"U1:24:5:30 B1:24:5:30 R1:24:5:30"}; LAST=${LAST:-"U2:0:1:20 R2:0:1:20 B2:0:1:20 R3:0:1:20 U3:0:1:20 B3:0:1:20 B4:0:1:20 R4:0:1:20 U4:0:1:20"}; RUNS="$FIRST $LAST"
for r in $FIRST $LAST; do IFS=: read -r n p f c <<< "$r"; step "$n" "$p" "$f" "$c"; done
summary() { printf "%-4s %6s %6s %7s %6s %6s %s\n" run tok/s ms/st dev_us head argmax parity
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-4s %6s %6s %7s %6s %6s %s\n" $name "${tok:--}" "${ms:--}" "$(us step)" "$(per head)" "$(per argmax)" "${par:+$par,$arg}"
  done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
