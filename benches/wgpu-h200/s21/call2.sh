#!/bin/bash
# Session 21, branch s21-wgpu, call 2 (prepared, NOT RUN: this helper's device time was
# spent on call 1). One H200 through Vulkan, SmolLM2 shape. Call 1: the flat decode's f32
# form (the default) takes 119 registers at 8 subgroups (2 workgroups of 256 an SM, model
# told 264) and 96 at 4; `h16-reload` 80 (3 an SM) but told 396 it lost all three pairs
# (18.72-19.32 against 18.26-18.67 us a layer). Two questions with existing knobs:
# (a) is the 4-subgroup f32 form, told its own residency (96 registers x 128 invocations:
#     5 an SM, 660), faster than the 8-subgroup default? (s20-wgsl's one run of the f16
#     form at 4 subgroups told 792 took 18.19);
# (b) does residency matter at all for this form: the same `h16-reload` kernel told 264
#     against 396 (call 1's X).
#   END=150 bash .dev-s21-wgpu/call2.sh   (run tool timeout_s >= END + 20; carry as call 1)
# PREDICTIONS (before the call): regs of h16-reload at 4 subgroups 72-80 (6 of 128 an SM:
#   792); F4 (f32, 4 subgroups, 660) 18.0-18.8 us a layer against def 18.3-18.7, a tie or
#   -0.3; Y (h16-reload, 264) 18.9-19.4 against X (396) 18.7-19.3: within 0.3 (residency
#   not the bound).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s21wgpu2; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-150}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s21-wgpu-call2.tgz" -C "$R" . 2>/dev/null; }
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "/tmp/$b" && chmod +x "/tmp/$b" || { el "no $b.gz"; exit 1; }; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
el start
P=plans/smollm2-135m-moa-50.toml
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late"
for e in "MOA_WGSL_SG_FLAT_QK=h16-reload MOA_WGSL_SG_FLAT_SUBGROUPS=4" "MOA_WGSL_SG_FLAT_QK=f32 MOA_WGSL_SG_FLAT_SUBGROUPS=4"; do
  r=$(env $F $e timeout 20 /tmp/wdb regs $P - 6 2>&1 | grep -m1 -E "^regs layer [0-9]|error"); echo "$e $r" | tee -a "$R/regs.txt"; done
save
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
envof() { case $1 in def*) echo "MOA_WGPU_COOP_ATTN=0";; F4*) echo "MOA_WGSL_SG_FLAT_SUBGROUPS=4 MOA_WGPU_DECODE_RESIDENT=660";;
  X*) echo "MOA_WGSL_SG_FLAT_QK=h16-reload MOA_WGPU_DECODE_RESIDENT=396";; Y*) echo "MOA_WGSL_SG_FLAT_QK=h16-reload MOA_WGPU_DECODE_RESIDENT=264";; esac; }
step() { local name=$1 par=$2 cap=$3; left $(( cap + 5 )) || { el "skip $name"; return; }
  env $(envof $name) timeout $cap /tmp/wpe $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: " "$R/$name.txt" | cut -c1-200 | head -2; save; }
RUNS="def1:24:30 F41:24:30 X1:0:17 Y1:0:17 def2:0:17 F42:0:17 X2:0:17 Y2:0:17 def3:0:17 F43:0:17"
for r in $RUNS; do IFS=: read -r n p c <<< "$r"; step "$n" "$p" "$c"; done
{ printf "%-5s %6s %7s %7s %6s %6s %s\n" run tok/s ms/st dev_us attn merge parity
  for r in $RUNS; do IFS=: read -r name _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-5s %6s %7s %7s %6s %6s %s\n" $name "${tok:--}" "${ms:--}" "$(us step)" "$(per attention)" "$(per merge)" "${par:+$par,$arg}"
  done; } > "$R/summary.txt"; cat "$R/summary.txt"
el done; save
