#!/bin/bash
# Session 34, branch s34-fuse, call 1: where the fused output -> gate/up decode dispatch
# (MOA_WGPU_DECODE_FUSED_MLP=1) loses against the two dispatches it replaces, and three
# candidate fixes, opt-in. Carry .dev-s34-fuse (pack.sh); run tool timeout 300.
#   END=230 bash .dev-s34-fuse/call1.sh
# Registers: `wdb regs-fused 576 576` (the fused module in each form, checked and unchecked,
#   beside the direct output product and the gate/up product alone).
# Parity runs (1 row x 24 tokens + 2 steps, as s33-mega): pA = separate dispatches,
#   pC = the fused dispatch with every candidate (AHEAD=2 X4=1 UNCHECKED=1).
# Speed runs (16 rows x 4096, 256 new, moa-50, MOA_WGPU_COOP_ATTN=0; profile 5 + parity 24
#   first, then profile 1 for tokens/s): A = separate; B = fused (main's form); S = B with
#   SPLIT=1 (its phases as two dispatches, each still meeting once: "out" and "gate_up" rows
#   now each phase's); F = B + AHEAD=1 (gate/up weights loaded before the meeting); G = B +
#   AHEAD=2 (before the output phase); X = B + X4=1 (x as 4-vectors); U = B + UNCHECKED=1;
#   C = B + AHEAD=2 X4=1 UNCHECKED=1.
# MODEL (written before the call):
#  Separate: out 4.3 us (36 workgroups), gate_up 7.8 (96), each with a ~2.2 us dependent
#  dispatch floor: ~2.1 + ~5.6 of kernel. Fused B 13.3 on 96 workgroups = one floor + the
#  out phase + a meeting (~1.2) + the gate/up phase, which starts its weights' round trip
#  only after the meeting. With <= 1 workgroup an SM (96 of 132) neither registers nor
#  workgroup memory cut occupancy, so the suspects that are not the order of the loads
#  should show small: registers (fused = max of the phases, gate/up alone 209 in session 23)
#  decide nothing unless they spill; 31 KB of workgroup memory likewise.
#  PREDICTED: regs: out alone 90-140, gate/up alone ~209, fused AHEAD 0 within +-10 of 209,
#   AHEAD 2 210-255 (gate/up's 18 B fragments live across the out phase), no spill (local
#   memory 0) in any; workgroup memory 26.9 KB gate/up, ~31 KB fused.
#   S: out row 5.3-6.0 (out alone + a meeting), gate_up row 8.8-9.5: each phase of the module
#   within ~1.3 us of its kernel alone (the meeting), i.e. the module itself costs ~0.
#   F 12.0-12.8 us (the weights in flight during the meeting); G 10.5-12.0 (they stream while
#   the out phase runs); X -0.1..-0.4; U -0.3..-1.0; C 9.5-11.5 against A's out + gate_up
#   12.1: C tokens/s +0..+3% over A (each us a layer ~ 30 us a step ~ 2.1%), B -2.2% as before.
#   Parity: every fused form 0.0506 +-0.003, argmax 3/3, error flag 0; A 0.0496.
D=$(cd "$(dirname "$0")" && pwd); R=${RDIR:-/tmp/s34fuse1}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-230}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s34-fuse-${CALL:-call1}.tgz" -C "$R" . 2>/dev/null; }
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "$B/$b" && chmod +x "$B/$b" || { el "no $b.gz"; exit 1; }; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)} MOA_WGPU_COOP_ATTN=0
el start; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
[ -n "$NOREGS" ] || { timeout 40 $B/wdb regs-fused 576 576 > "$R/regs.txt" 2>&1; el "regs rc=$?"; grep -E "^regs (out|gate|fused)" "$R/regs.txt" | cut -c1-230; save; }
P=plans/smollm2-135m-moa-50.toml
F1="MOA_WGPU_DECODE_FUSED_MLP=1"
envof() { case $1 in A*|pA) echo "MOA_WGPU_DECODE_FUSED_MLP=0";; B*|pB) echo "$F1";;
  S*) echo "$F1 MOA_WGPU_DECODE_FUSED_SPLIT=1";; F*|pF) echo "$F1 MOA_WGPU_DECODE_FUSED_AHEAD=1";;
  G*|pG) echo "$F1 MOA_WGPU_DECODE_FUSED_AHEAD=2";; X*|pX) echo "$F1 MOA_WGPU_DECODE_FUSED_X4=1";;
  U*|pU) echo "$F1 MOA_WGPU_DECODE_FUSED_UNCHECKED=1";;
  C*|pC) echo "$F1 MOA_WGPU_DECODE_FUSED_AHEAD=2 MOA_WGPU_DECODE_FUSED_X4=1 MOA_WGPU_DECODE_FUSED_UNCHECKED=1";;
  M*) echo "";; esac; }
par() { local name=$1; echo "$name: $(envof $name) (1 row, parity 24)" >> "$R/envs.txt"
  env $(envof $name) timeout 25 $B/wpe --like smollm2-135m --rows 1 --new 4 --plan $P --prompt 64 --parity 24 > "$R/$name.txt" 2>&1
  echo "$name rc=$? $(grep -h -o -E "max .logit err. [^,]*, argmax equal [0-9/]+" $R/$name.txt) $(grep -h 'fused mlp meetings' $R/$name.txt) $(grep -h -o -E 'MOA_WGPU_DECODE_FUSED_MLP=1 not used[^;]*' $R/$name.txt) $(grep -h -o -E '[0-9]+ dispatches/step' $R/$name.txt | head -1)" | tee -a "$R/parity.txt"
  grep -h -m2 -E "panicked|rror" "$R/$name.txt" | cut -c1-300; save; }
for n in ${PARS:-pA pC}; do par $n; done
step() { local name=$1 par=$2 prof=$3 cap=$4; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe --like smollm2-135m --rows 16 --new 256 --profile $prof \
    --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "panicked|Error" "$R/$name.txt" | cut -c1-200 | head -2
  grep -o -E "(output \+ gate/up[^;]* products in one dispatch[^)]*\)|MOA_WGPU_DECODE_FUSED_MLP=1 not used[^;]*)" "$R/$name.txt" | head -1; save; }
RUNS=${RUNS:-"A1:24:5:30 B1:24:5:30 S1:24:5:30 F1:24:5:30 G1:24:5:30 X1:24:5:30 U1:24:5:30 C1:24:5:30 A2:0:1:20 C2:0:1:20 G2:0:1:20 B2:0:1:20 F2:0:1:20 A3:0:1:20 G3:0:1:20 C3:0:1:20"}
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
