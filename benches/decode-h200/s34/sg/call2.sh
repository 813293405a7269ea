#!/bin/bash
# Session 34, branch s34-sg, call 2: the branch's default (MOA_WGPU_SG_FIT unset = auto: the
# fitted form on 32 lanes) against the K loop (MOA_WGPU_SG_FIT=0), to confirm that auto picks the
# fitted sets on the H200 and the call-1 result in more pairs.
#   END=75 bash .dev-s34-sg/call2.sh   (run tool timeout_s 100; carry .dev-s34-sg, filled by
#   BIN=/tmp/s34-sg-bin2 bash benches/decode-h200/s34/sg/pack.sh; binaries of the commit that
#   added the auto test, 2d81658)
# SmolLM2 shape, random weights, 16 rows x 4096, 256 new tokens, moa-50, MOA_WGPU_COOP_ATTN=0.
# D = the default (auto: fitted); L = MOA_WGPU_SG_FIT=0 (the K loop, main's form).
# MODEL (written before the call): call 1: fitted 11 428-11 535 tok/s against the loop's
#  11 360-11 404 (every pair), out 3.99-4.28 against 4.31-4.65 us, qkv 5.23-5.69 against
#  5.55-5.86, down unchanged, parity 0.0534 against 0.0496.
#  PREDICTED: D's description names "fitted K (K 576: KSPLIT 5 x 1 step, K 1536: KSPLIT 6 x 2
#  steps)" (95%); D above L in every pair (75%), +0.5..+1.5%; parity D 0.0534, L 0.0496 (the same
#  binaries' sums: 95%), argmax 3/3.
# RUNS: D1 L1 at --profile 5 --parity 24; then L2 D2 D3 L3 at --profile 5.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s34sg2}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-75}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s34-sg-${CALL:-call2}.tgz" -C "$R" . 2>/dev/null; }
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
envof() { case $1 in D*) echo "";; L*) echo "MOA_WGPU_SG_FIT=0";; esac; }
step() { local name=$1 par=$2 prof=$3 cap=$4; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe "${W[@]}" --profile $prof --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|Error|error" "$R/$name.txt" | cut -c1-200 | head -4
  grep -o -E "decode products: [^)]*\)[^;]*" "$R/$name.txt" | head -1 | cut -c1-300; save; }
FIRST=${FIRST:-"D1:24:5:30 L1:24:5:30"}; LAST=${LAST:-"L2:0:5:20 D2:0:5:20 D3:0:5:20 L3:0:5:20"}; RUNS="$FIRST $LAST"
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
