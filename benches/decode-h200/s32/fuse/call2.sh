#!/bin/bash
# Session 32, branch s32-fuse, call 2 (NOT RUN by the helper: its budget was one call, spent on
# call 1, where the fused dispatch was silently off). Ready for the lead:
#   END=75 bash .dev-s32-fuse/call2.sh   (run tool timeout_s 95; carry .dev-s32-fuse, filled by
#   BIN=/tmp/s32-fuse-bin bash benches/decode-h200/s32/fuse/pack.sh, the release wpe of the
#   branch's second commit; ~60 s of command + the start)
# A = MOA_WGPU_DECODE_FUSED_MLP=0 (main's dispatches exactly; the same binary: call 1 showed
#     8 runs of it within 10 950-11 045 tok/s, +-0.45%: the A/A noise),
# B = MOA_WGPU_DECODE_FUSED_MLP=1: the output product (matrix units, direct walk, + residual;
#     main runs it on subgroups, matvec_sg) and the gate/up product (RMSNorm, SwiGLU) in ONE
#     dispatch of min(96 tiles, 132) = 96 workgroups of 128 lanes meeting at a device-wide
#     counter between the phases; down stays its own dispatch. 153 -> 123 dispatches a step.
# C (optional, RUNS=...: C1:0:5:30) = MOA_WGPU_COOP_DECODE=1: the separate output product on
#     matrix units (B's out phase as its own dispatch): separates the meeting from the kernel.
# MODEL (written before the call):
#  Today (call 1's A): step 1.44-1.45 ms, 10.95-11.03k tok/s; out 4.43 us, gate_up 8.09.
#  A boundary replaced by a meeting saves 2.2-2.3 us - 0.7..1.3 (the meeting at 96) = 0.9-1.6
#  us a layer if the phases keep their times; the out phase is the coop kernel, not sg's
#  (unknown here: +-1 us a layer). PREDICTED: B's profile kind "out" (= the fused dispatch)
#  10.0-11.5 us against out + gate_up 12.2-12.5; step -20..-60 us; tok/s +1.5..+4%
#  (11.0k -> 11.15-11.45k). Parity 0.0496 +-0.003, argmax 3/3 (the out product's sums now
#  on matrix units in f16 x f16 -> f32: not bit-equal to A; tokens: the same row-0 tokens
#  predicted, 80%). Meetings line: arrivals = 96 x 30 x (steps run incl. warm-up/profile),
#  error flag 0. Risk (30%): slower fused code (two phases' registers in one kernel).
# RUNS: B1 A1 at --profile 5 --parity 24, then A2 B2 B3 A3 at --profile 1 --parity 0.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s32fuse2}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-75}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s32-fuse-${CALL:-call2}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wpe.gz" > "$B/wpe" && chmod +x "$B/wpe" || { el "no wpe.gz"; exit 1; }
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
envof() { case $1 in A*) echo "MOA_WGPU_DECODE_FUSED_MLP=0";; B*) echo "MOA_WGPU_DECODE_FUSED_MLP=1";; C*) echo "MOA_WGPU_COOP_DECODE=1";; esac; }
step() { local name=$1 par=$2 prof=$3 cap=$4; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe --like smollm2-135m --rows 16 --new 256 --profile $prof \
    --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|fused mlp|row 0 tokens|Error|error" "$R/$name.txt" | cut -c1-200 | head -4
  grep -o -E "(output \+ gate/up products in one dispatch[^;]*|MOA_WGPU_DECODE_FUSED_MLP=1 not used[^;]*)" "$R/$name.txt" | head -1; save; }
RUNS=${RUNS:-"B1:24:5:30 A1:24:5:30 A2:0:1:20 B2:0:1:20 B3:0:1:20 A3:0:1:20"}
for r in $RUNS; do IFS=: read -r n p f c <<< "$r"; step "$n" "$p" "$f" "$c"; done
summary() { printf "%-4s %6s %7s %5s %7s %6s %5s %5s %5s %5s %s\n" run tok/s ms/st disp dev_us attn qkv out gu down parity
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    di=$(grep -o -E "[0-9]+ dispatches/step" "$t" | head -1 | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-4s %6s %7s %5s %7s %6s %5s %5s %5s %5s %s\n" $name "${tok:--}" "${ms:--}" "${di:--}" "$(us step)" "$(per attention)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "${par:+$par,$arg}"
  done
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; echo "$name $(grep -h 'row 0 tokens' $R/$name.txt) $(grep -h 'fused mlp' $R/$name.txt)"; done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
