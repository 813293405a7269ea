#!/bin/bash
# Session 34, branch s34-fuse, call 2: the fused output -> gate/up decode dispatch without naga's
# runtime checks and with x as 4-vectors (V = MOA_WGPU_DECODE_FUSED_MLP=1
# MOA_WGPU_DECODE_FUSED_X4=1 MOA_WGPU_DECODE_FUSED_UNCHECKED=1), against separate dispatches as
# main builds them (A: the matrix-unit gate/up product checked) and like for like (K: separate,
# the gate/up product unchecked, MOA_WGPU_COOP_DECODE_UNCHECKED=1). Carry .dev-s34-fuse
# (pack.sh); run tool timeout 200.
#   END=160 bash .dev-s34-fuse/call2.sh
# Registers: `wdb regs-fused 576 576`, the fused module now bound as the engine binds it
# (call 1's layout lacked bindings 8-31: its 16-28 registers and 640-4480 bytes of code were
# of a module whose other accesses the driver dropped).
# Parity runs (1 row x 24 tokens + 2 steps): pK, pV. Speed runs (16 rows x 4096, 256 new,
# moa-50, MOA_WGPU_COOP_ATTN=0): A1 K1 V1 T1 at profile 5 + parity 24 (T = V with SPLIT=1:
# each phase's dispatch, unchecked), then V K A A K V V K A at profile 1 (tokens/s).
# MODEL (written before the call; call 1: U (unchecked) fused kind 11.99 us against B's 13.34,
# X (4-vectors) 12.78; weights ahead no gain; A's out + gate_up 11.94):
#  PREDICTED: regs fused checked 230-255 (the gate/up phase's 236 alone), unchecked 200-225,
#   shared 31 024 B; out alone 43, gate/up alone 236 (checked).
#   K: gate_up 7.71 -> 6.6-7.2 us (the checks of its x, norm and store indices gone).
#   V: fused kind 11.2-11.8 us. T: out row 5.3-6.3, gate_up row 7.6-8.6.
#   tokens/s: V vs A +1..+2.5%; K vs A +0.5..+1.5%; V vs K 0..+1.5% (a boundary (~2.2 us)
#   less a meeting (~1.2) a layer, less what the matrix-unit output phase costs over the
#   subgroup output product).
#   Parity: pK 0.0496 (the same sums), pV 0.0506 +-0.003; argmax 3/3; error flag 0.
D=$(cd "$(dirname "$0")" && pwd); R=${RDIR:-/tmp/s34fuse2}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-160}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s34-fuse-${CALL:-call2}.tgz" -C "$R" . 2>/dev/null; }
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "$B/$b" && chmod +x "$B/$b" || { el "no $b.gz"; exit 1; }; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)} MOA_WGPU_COOP_ATTN=0
el start; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
[ -n "$NOREGS" ] || { timeout 40 $B/wdb regs-fused 576 576 > "$R/regs.txt" 2>&1; el "regs rc=$?"; grep -E "^regs (out|gate|fused)" "$R/regs.txt" | cut -c1-260; save; }
P=plans/smollm2-135m-moa-50.toml
F1="MOA_WGPU_DECODE_FUSED_MLP=1"
envof() { case $1 in A*|pA) echo "MOA_WGPU_DECODE_FUSED_MLP=0";;
  K*|pK) echo "MOA_WGPU_DECODE_FUSED_MLP=0 MOA_WGPU_COOP_DECODE_UNCHECKED=1";;
  V*|pV) echo "$F1 MOA_WGPU_DECODE_FUSED_X4=1 MOA_WGPU_DECODE_FUSED_UNCHECKED=1";;
  T*) echo "$F1 MOA_WGPU_DECODE_FUSED_X4=1 MOA_WGPU_DECODE_FUSED_UNCHECKED=1 MOA_WGPU_DECODE_FUSED_SPLIT=1";;
  M*) echo "";; esac; }
par() { local name=$1; echo "$name: $(envof $name) (1 row, parity 24)" >> "$R/envs.txt"
  env $(envof $name) timeout 25 $B/wpe --like smollm2-135m --rows 1 --new 4 --plan $P --prompt 64 --parity 24 > "$R/$name.txt" 2>&1
  echo "$name rc=$? $(grep -h -o -E "max .logit err. [^,]*, argmax equal [0-9/]+" $R/$name.txt) $(grep -h 'fused mlp meetings' $R/$name.txt) $(grep -h -o -E 'MOA_WGPU_DECODE_FUSED_MLP=1 not used[^;]*' $R/$name.txt) $(grep -h -o -E '[0-9]+ dispatches/step' $R/$name.txt | head -1)" | tee -a "$R/parity.txt"
  grep -h -m2 -E "panicked|rror" "$R/$name.txt" | cut -c1-300; save; }
for n in ${PARS:-pK pV}; do par $n; done
step() { local name=$1 par=$2 prof=$3 cap=$4; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe --like smollm2-135m --rows 16 --new 256 --profile $prof \
    --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "panicked|Error" "$R/$name.txt" | cut -c1-200 | head -2
  grep -o -E "(output \+ gate/up[^;]* products in one dispatch[^)]*\)|MOA_WGPU_DECODE_FUSED_MLP=1 not used[^;]*)" "$R/$name.txt" | head -1; save; }
RUNS=${RUNS:-"A1:24:5:30 K1:24:5:30 V1:24:5:30 T1:24:5:30 V2:0:1:20 K2:0:1:20 A2:0:1:20 A3:0:1:20 K3:0:1:20 V3:0:1:20 V4:0:1:20 K4:0:1:20 A4:0:1:20"}
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
