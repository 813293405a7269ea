#!/bin/bash
# Session 34, branch s34-down, the call: MOA_WGPU_SG_FIT_STEPS=1 (down's fitted product on 12
# subgroups x 1 step, 384 invocations, instead of 6 x 2) against the default (6 x 2).
#   END=120 bash .dev-s34-down/call.sh   (run tool timeout_s 140; carry .dev-s34-down, filled by
#   BIN=/tmp/s34-down-bin bash benches/decode-h200/s34/down/pack.sh)
# SmolLM2 shape, random weights, 16 rows x 4096, 256 new tokens, moa-50, MOA_WGPU_COOP_ATTN=0.
# D = the default (fitted: K 576 5 x 1, K 1536 6 x 2); S = MOA_WGPU_SG_FIT_STEPS=1 (K 1536 12 x 1).
# MODEL (written before the call): s34-sg: down 5.94-7.24 us fitted 6 x 2 (86 registers, two
#  dependent rounds of loads), the loop's 6.04-6.41; one step held 68-74 registers (out 3.99-4.28
#  us at 5 x 1). At 12 x 1: one round of loads a lane, no loop-carried sums, registers as the
#  one-step out/down form (69 f32 x); 384 invocations x 69 regs = 26.5k regs a workgroup: 2
#  workgroups an SM (65 536 regs), 144 x 2 (rows 8: grid y 2) = 288 workgroups on 132 SMs x 2
#  = 264 slots: a small second wave (the 6 x 2 form: 192 x 86 = 16.5k, 3 an SM, one wave).
#  Each lane also runs the 36-shuffle reduction and 12 subgroups publish (was 6).
#  PREDICTED: regs 12:1:8:1 down-style 66-74 (80%); down 6.1 -> 5.4-6.0 us (55%), the wave tail
#  and the doubled reduction eat part; tokens/s S above D in every pair: 45%, mean +0..+0.4%
#  (down is 30 of ~210 dispatches, -0.3 us x 30 = -9 us of a 1 350 us step). Parity: D 0.0534
#  (s34-sg), S differs (down's partial sums in another order) 0.048-0.058, argmax 3/3.
# RUNS: W (throwaway warm-up, --new 32), regs; D1 S1 at --parity 24; then S2 D2 D3 S3 D4 S4.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s34down}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-120}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s34-down-${CALL:-call}.tgz" -C "$R" . 2>/dev/null; }
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
timeout 25 $B/wpe --like smollm2-135m --rows 16 --new 32 --plan $P --prompt 4096 > "$R/W.txt" 2>&1; el "W rc=$?"
timeout 15 $B/wdb regs-products 6:1:8:2,12:1:8:1,5:1:8:1 > "$R/regs.txt" 2>&1; el "regs rc=$?"
grep -E "regs|registers|threads" "$R/regs.txt" | cut -c1-200 | head -20
envof() { case $1 in D*) echo "";; S*) echo "MOA_WGPU_SG_FIT_STEPS=1";; esac; }
step() { local name=$1 par=$2 prof=$3 cap=$4; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe "${W[@]}" --profile $prof --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|Error|error" "$R/$name.txt" | cut -c1-200 | head -4
  grep -o -E "decode products: [^)]*\)[^;]*" "$R/$name.txt" | head -1 | cut -c1-300; save; }
FIRST=${FIRST:-"D1:24:5:30 S1:24:5:30"}; LAST=${LAST:-"S2:0:5:20 D2:0:5:20 D3:0:5:20 S3:0:5:20 D4:0:5:20 S4:0:5:20"}; RUNS="$FIRST $LAST"
for r in $FIRST; do IFS=: read -r n p f c <<< "$r"; step "$n" "$p" "$f" "$c"; done
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
