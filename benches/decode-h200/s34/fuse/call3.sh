#!/bin/bash
# Session 34, branch s34-fuse, call 3: the branch's defaults (M: separate dispatches, the
# matrix-unit gate/up product unchecked, MOA_WGPU_COOP_DECODE_UNCHECKED=1 the default now), the
# fused dispatch as it now builds (V = MOA_WGPU_DECODE_FUSED_MLP=1: x as 4-vectors always,
# unchecked through the same knob) and W = V + MOA_WGPU_DECODE_FUSED_WEIGHTS_RW=1 (the gate/up
# phase's weights read_write: the driver may not move their loads above the meeting's
# storageBarrier). A = MOA_WGPU_COOP_DECODE_UNCHECKED=0 (main's checked gate/up) once more.
# Carry .dev-s34-fuse (pack.sh); run tool timeout 140.
#   END=110 bash .dev-s34-fuse/call3.sh
# MODEL (written before the call; call 2: the fused module unchecked with 4-vectors at the
# 255-register cap and 37 680 B of shared memory (31 024 its arrays: the rest likely spills),
# checked with 4-vectors 236 = the gate/up product alone; the split's phases each ~ their
# kernel alone + a meeting; V -2.2% tokens/s against K = M):
#  If the driver hoists the gate/up phase's weight loads (read-only memory) above the meeting
#  and holds them across the output phase (which would also be why loading them ahead, call 1,
#  changed nothing), W drops the registers and the spill.
#  PREDICTED: regs W (x4, rw) unchecked 215-240 with 31 024 B shared (60%: no change, the
#   registers are the phases' own); W's fused kind -0.5..-1.5 us against V (40%), tokens/s W
#   vs M -1.5..+0.5% (the fused dispatch stays below the unchecked separate dispatches: 75%);
#   V vs M -2.2 +-0.7%; M vs A +1.6 +-0.6%. Parity pM 0.0496, pW 0.0506 +-0.003, 3/3, flag 0.
D=$(cd "$(dirname "$0")" && pwd); R=${RDIR:-/tmp/s34fuse3}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-110}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s34-fuse-${CALL:-call3}.tgz" -C "$R" . 2>/dev/null; }
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "$B/$b" && chmod +x "$B/$b" || { el "no $b.gz"; exit 1; }; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)} MOA_WGPU_COOP_ATTN=0
el start; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
[ -n "$NOREGS" ] || { timeout 40 $B/wdb regs-fused 576 576 > "$R/regs.txt" 2>&1; el "regs rc=$?"; grep -E "^regs (out|gate|fused)" "$R/regs.txt" | cut -c1-260; save; }
P=plans/smollm2-135m-moa-50.toml
F1="MOA_WGPU_DECODE_FUSED_MLP=1"
envof() { case $1 in A*|pA) echo "MOA_WGPU_DECODE_FUSED_MLP=0 MOA_WGPU_COOP_DECODE_UNCHECKED=0";;
  M*|pM) echo "MOA_WGPU_DECODE_FUSED_MLP=0";;
  V*|pV) echo "$F1";;
  W*|pW) echo "$F1 MOA_WGPU_DECODE_FUSED_WEIGHTS_RW=1";; esac; }
par() { local name=$1; echo "$name: $(envof $name) (1 row, parity 24)" >> "$R/envs.txt"
  env $(envof $name) timeout 25 $B/wpe --like smollm2-135m --rows 1 --new 4 --plan $P --prompt 64 --parity 24 > "$R/$name.txt" 2>&1
  echo "$name rc=$? $(grep -h -o -E "max .logit err. [^,]*, argmax equal [0-9/]+" $R/$name.txt) $(grep -h 'fused mlp meetings' $R/$name.txt) $(grep -h -o -E 'MOA_WGPU_DECODE_FUSED_MLP=1 not used[^;]*' $R/$name.txt) $(grep -h -o -E '[0-9]+ dispatches/step' $R/$name.txt | head -1)" | tee -a "$R/parity.txt"
  grep -h -m2 -E "panicked|rror" "$R/$name.txt" | cut -c1-300; save; }
for n in ${PARS:-pM pW}; do par $n; done
step() { local name=$1 par=$2 prof=$3 cap=$4; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe --like smollm2-135m --rows 16 --new 256 --profile $prof \
    --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "panicked|Error" "$R/$name.txt" | cut -c1-200 | head -2
  grep -o -E "(output \+ gate/up[^;]* products in one dispatch[^)]*\)|MOA_WGPU_DECODE_FUSED_MLP=1 not used[^;]*)" "$R/$name.txt" | head -1; save; }
RUNS=${RUNS:-"M1:24:5:30 W1:24:5:30 W2:0:1:20 M2:0:1:20 V2:0:1:20 A2:0:1:20 V3:0:1:20 M3:0:1:20 W3:0:1:20"}
for r in $RUNS; do IFS=: read -r n p f c <<< "$r"; step "$n" "$p" "$f" "$c"; done
summary() { printf "%-4s %6s %7s %5s %7s %6s %5s %6s %5s %5s %s\n" run tok/s ms/st disp dev_us attn qkv out gu down parity
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    di=$(grep -o -E "[0-9]+ dispatches/step" "$t" | head -1 | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.a-z]+" "$t" | grep -o -E "[0-9.a-z]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-4s %6s %7s %5s %7s %6s %5s %6s %5s %5s %s\n" $name "${tok:--}" "${ms:--}" "${di:--}" "$(us step)" "$(per attention)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "${par:+$par,$arg}"
  done
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; echo "$name $(grep -h 'row 0 tokens' $R/$name.txt | cut -c1-60) $(grep -h 'fused mlp' $R/$name.txt)"; done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
