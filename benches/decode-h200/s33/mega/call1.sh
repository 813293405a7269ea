#!/bin/bash
# Session 33, branch s33-mega, call 1: the fused decode dispatch with every workgroup variable a
# multiple of 16 bytes (the meeting's words were u32: the gate/up phase's staged x 8 bytes off,
# the inf of lead call 1; lead call 8 found and fixed the same) and the down product as its third
# phase (MOA_WGPU_DECODE_FUSED_DOWN=1). Carry .dev-s33-mega (pack.sh); run tool timeout 200.
#   END=150 bash .dev-s33-mega/call1.sh
# Parity runs (1 row x 24 tokens + 2 steps, as the lead's diag4.sh): pA = main's dispatches,
#   pB = MOA_WGPU_DECODE_FUSED_MLP=1, pD = + MOA_WGPU_DECODE_FUSED_DOWN=1.
# Speed runs (16 rows x 4096, 256 new, moa-50, MOA_WGPU_COOP_ATTN=0): A = main, B = fused out +
#   gate/up (MEET 1, the default), D = fused out + gate/up + down, E = B with MEET=0 (lane 0
#   spins alone), F = D with MEET=0.
# MODEL (written before the call):
#  Lead call 8 (same fix, 2 phases): B parity 0.0506 3/3, but B 10.74-10.76k tok/s against A
#  10.95-11.02k (-2.2%), its fused kind 13.24 us against out + gate_up 4.53 + 7.82 = 12.35.
#  PREDICTED: pB 0.0506 +-0.003 3/3 (as lead call 8); pD 0.050-0.056 3/3 (the SwiGLU output
#  rounded to f16 before down, down's sums on matrix units); D 93 dispatches a step; its fused
#  kind = B's 13.2 + a down phase (K 1536 on 36 workgroups, direct walk: 4.5-6.5 us) + a
#  meeting (1.1-1.3) - no dispatch floor = 18-20 us against B's 13.2 + down 6.1 = 19.3:
#  D vs B -0.5..+1.5% tok/s (50%: a wash); D vs A -2..0%. E vs B: +-0.5% (the meeting's form
#  does not set the speed; 60%).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s33mega1}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-150}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s33-mega-${CALL:-call1}.tgz" -C "$R" . 2>/dev/null; }
gunzip -c "$D/wpe.gz" > "$B/wpe" && chmod +x "$B/wpe" || { el "no wpe.gz"; exit 1; }
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)} MOA_WGPU_COOP_ATTN=0
el start; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
P=plans/smollm2-135m-moa-50.toml
envof() { case $1 in A*|pA) echo "MOA_WGPU_DECODE_FUSED_MLP=0";; B*|pB) echo "MOA_WGPU_DECODE_FUSED_MLP=1";;
  D*|pD) echo "MOA_WGPU_DECODE_FUSED_MLP=1 MOA_WGPU_DECODE_FUSED_DOWN=1";;
  E*) echo "MOA_WGPU_DECODE_FUSED_MLP=1 MOA_WGPU_DECODE_FUSED_MEET=0";;
  F*) echo "MOA_WGPU_DECODE_FUSED_MLP=1 MOA_WGPU_DECODE_FUSED_DOWN=1 MOA_WGPU_DECODE_FUSED_MEET=0";; esac; }
par() { local name=$1; echo "$name: $(envof $name) (1 row, parity 24)" >> "$R/envs.txt"
  env $(envof $name) timeout 25 $B/wpe --like smollm2-135m --rows 1 --new 4 --plan $P --prompt 64 --parity 24 > "$R/$name.txt" 2>&1
  echo "$name rc=$? $(grep -h -o -E "max .logit err. [^,]*, argmax equal [0-9/]+" $R/$name.txt) $(grep -h 'fused mlp meetings' $R/$name.txt) $(grep -h -o -E 'MOA_WGPU_DECODE_FUSED_MLP=1 not used[^;]*' $R/$name.txt) $(grep -h -o -E '[0-9]+ dispatches/step' $R/$name.txt | head -1)" | tee -a "$R/parity.txt"
  grep -h -m2 -E "panicked|rror" "$R/$name.txt" | cut -c1-300; save; }
for n in pA pB pD; do par $n; done
step() { local name=$1 par=$2 prof=$3 cap=$4; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe --like smollm2-135m --rows 16 --new 256 --profile $prof \
    --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "panicked|Error" "$R/$name.txt" | cut -c1-200 | head -2
  grep -o -E "(output \+ gate/up[^;]* products in one dispatch[^;]*|MOA_WGPU_DECODE_FUSED_MLP=1 not used[^;]*)" "$R/$name.txt" | head -1; save; }
RUNS=${RUNS:-"D1:24:5:30 B1:24:5:30 A1:24:5:30 A2:0:1:20 D2:0:1:20 B2:0:1:20 E1:0:1:20 F1:0:1:20 D3:0:1:20 A3:0:1:20 B3:0:1:20 D4:0:1:20 A4:0:1:20"}
for r in $RUNS; do IFS=: read -r n p f c <<< "$r"; step "$n" "$p" "$f" "$c"; done
summary() { printf "%-4s %6s %7s %5s %7s %6s %5s %5s %5s %5s %s\n" run tok/s ms/st disp dev_us attn qkv out gu down parity
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    di=$(grep -o -E "[0-9]+ dispatches/step" "$t" | head -1 | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.a-z]+" "$t" | grep -o -E "[0-9.a-z]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-4s %6s %7s %5s %7s %6s %5s %5s %5s %5s %s\n" $name "${tok:--}" "${ms:--}" "${di:--}" "$(us step)" "$(per attention)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "${par:+$par,$arg}"
  done
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; echo "$name $(grep -h 'row 0 tokens' $R/$name.txt | cut -c1-60) $(grep -h 'fused mlp' $R/$name.txt)"; done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
