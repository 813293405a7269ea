#!/bin/bash
# Session 19, branch s19-wgsl, call 3 (NOT RUN in session 19: the helper's device time was
# spent; ready for the next session): the flat decode with the next step's K issued under
# this step's V and P.V (MOA_WGSL_SG_FLAT_PREFETCH=1) against the default flat form and
# the scalar decode, in the engine's step.
#   END=120 bash .dev-s19-wgsl/call3-wgsl.sh   (run tool timeout_s >= END + 20)
# Carry as call1-wgsl.sh (pack-wgsl.sh; binaries of this branch's last commit).
# 1. regs (background, during def1): SmolLM2 moa-50 layer 6, flat late with and without
#    the prefetch, early with it; Llama-3-8B upstream layer 2 with it.
# 2. The engine's step (SmolLM2 shape, 16 x 4096, moa-50, 64 tokens, --profile 5,
#    MOA_WGPU_COOP_ATTN=0): def1 pf1 sc1 pf2 def2 sc2 def3 pf3 (def = the default flat
#    form, pf = + prefetch, parity 24 in pf1; sc = MOA_WGSL_SG_DECODE=0, the scalar form).
# PREDICTIONS: regs prefetch 90-115 (16 more for the next K beside V; the driver may keep
#   both K sets if it hoists the next K above the scores: up to ~112); attention: pf
#   17.5-19.0 us a layer (one round trip a step instead of two: 4 of the item's 8 trips
#   hidden, ~0.5 us each), def 19.5-20.0, sc 21.4-22.5. Parity ~0.047, 3/3.
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-120}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=/tmp/s19wgsl3; rm -rf "$R"; mkdir -p "$R"
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "/tmp/$b-s19wgsl" && chmod +x "/tmp/$b-s19wgsl" || { el "no $b.gz"; exit 1; }; done
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export MOA_WGPU_COOP_ATTN=0
P=plans/smollm2-135m-moa-50.toml
U=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late"
( for c in "flat|$F|$P - 6" "flat-pf|$F MOA_WGSL_SG_FLAT_PREFETCH=1|$P - 6" \
      "early-pf|MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=1 MOA_WGSL_SG_FLAT_PREFETCH=1|$P - 6" \
      "llama-pf|$F MOA_WGSL_SG_FLAT_PREFETCH=1|$U 8 2"; do
    IFS='|' read -r n e a <<< "$c"
    r=$(env $e timeout 20 /tmp/wdb-s19wgsl regs $a 2>&1 | grep -m1 -E "^regs layer [0-9]|error|wgpu_decode_bench:")
    echo "$n $(echo "$r" | grep -o -E "Register_Count=[0-9]+" | cut -d= -f2) | $r"
  done ) > "$R/regs.txt" 2>&1 &
RP=$!
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
env_of() { case $1 in pf) echo "MOA_WGSL_SG_FLAT_PREFETCH=1";; sc) echo "MOA_WGSL_SG_DECODE=0";; esac; }
step() { local name=$1 form=$2 par=$3 cap=$4; left $(( END - cap )) || { el "skip $name"; return; }
  el "== $name ($(env_of $form))"; env $(env_of $form) timeout $cap /tmp/wpe-s19wgsl $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: |attention: " "$R/$name.txt" | cut -c1-300 | head -3; }
RUNS="def1:def:0:30 pf1:pf:24:30 sc1:sc:0:30 pf2:pf:0:16 def2:def:0:16 sc2:sc:0:16 def3:def:0:16 pf3:pf:0:16"
for r in $RUNS; do IFS=: read -r name form par cap <<< "$r"; step "$name" "$form" "$par" "$cap"
  [ "$name" = def1 ] && { wait $RP; el "regs done"; cut -c1-40 "$R/regs.txt"; }; done
printf "%-6s %6s %7s %7s %6s %6s %s\n" run tok/s ms/st dev_us attn merge parity
for r in $RUNS; do name=${r%%:*}; t=$R/$name.txt; [ -f "$t" ] || continue
  tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
  ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
  us() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
  per() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
  par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
  arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
  printf "%-6s %6s %7s %7s %6s %6s %s\n" $name "${tok:--}" "${ms:--}" "$(us step)" "$(per attention)" "$(per merge)" "${par:+$par,$arg}"
done | tee "$R/summary.txt"
tar czf "${OUT:-/tmp}/s19-wgsl-call3.tgz" -C "$R" . && cp "$R/summary.txt" "$R/regs.txt" "${OUT:-/tmp}/"
el done
