#!/bin/bash
# Session 19, branch s19-wgsl, call 2 (one H200 through Vulkan): the engine's new default
# (the flat decode on subgroups: half-row steps, V after the scores; no variable set)
# against the scalar decode (MOA_WGSL_SG_DECODE=0, main's default), and the flat form's
# registers on the upstream plans' shapes (head_dim 128).
#   END=60 bash .dev-s19-wgsl/call2-wgsl.sh   (run tool timeout_s >= END + 15)
# Carry as call1-wgsl.sh (pack-wgsl.sh; binaries of this branch's default commit).
# 1. regs (background, during new1): SmolLM2 moa-50 layer 6, flat late (= the default;
#    call 1's hva: 80); Llama-3-8B upstream moa plan (8 KV heads, group 4, head_dim 128)
#    layer 2 and Vicuna-7B (32 KV heads, MHA) layer 0: flat late and the scalar decode.
# 2. The engine's step as call 1 (SmolLM2 shape, 16 x 4096, moa-50, 64 tokens, --profile
#    5, MOA_WGPU_COOP_ATTN=0): new1 (parity 24) old1 new2 old2.
# PREDICTIONS: SmolLM2 80; Llama-3-8B flat 110-140 (4 heads x 8 columns of f32
#   accumulators, 16 f16 query registers, 8 loads a lane a step), Vicuna flat 70-90;
#   scalar Llama ~160-170 (session 11: 160 unchecked), Vicuna ~100. new 19.5-20.0 us a
#   layer, old 21.4-22.5; parity ~0.047, 3/3.
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-60}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=/tmp/s19wgsl2; rm -rf "$R"; mkdir -p "$R"
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "/tmp/$b-s19wgsl" && chmod +x "/tmp/$b-s19wgsl" || { el "no $b.gz"; exit 1; }; done
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export MOA_WGPU_COOP_ATTN=0
P=plans/smollm2-135m-moa-50.toml
U=tests/fixtures/upstream-plans
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late"
( for c in "smol-flat|$F|$P - 6" "llama-flat|$F|$U/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json 8 2" \
      "llama-scalar||$U/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json 8 2" \
      "vicuna-flat|$F|$U/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json 32 0" \
      "vicuna-scalar||$U/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json 32 0"; do
    IFS='|' read -r n e a <<< "$c"
    r=$(env $e timeout 20 /tmp/wdb-s19wgsl regs $a 2>&1 | grep -m1 -E "^regs layer [0-9]|error|wgpu_decode_bench:")
    echo "$n $(echo "$r" | grep -o -E "Register_Count=[0-9]+" | cut -d= -f2) | $r"
  done ) > "$R/regs.txt" 2>&1 &
RP=$!
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
env_of() { [ "$1" = old ] && echo "MOA_WGSL_SG_DECODE=0"; }
step() { local name=$1 form=$2 par=$3 cap=$4; left $(( END - cap )) || { el "skip $name"; return; }
  el "== $name ($(env_of $form))"; env $(env_of $form) timeout $cap /tmp/wpe-s19wgsl $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: |attention: |tuning" "$R/$name.txt" | cut -c1-300 | head -4; }
RUNS="new1:new:24:30 old1:old:0:16 new2:new:0:14 old2:old:0:16"
for r in $RUNS; do IFS=: read -r name form par cap <<< "$r"; step "$name" "$form" "$par" "$cap"
  [ "$name" = new1 ] && { wait $RP; el "regs done"; cut -c1-40 "$R/regs.txt"; }; done
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
tar czf "${OUT:-/tmp}/s19-wgsl-call2.tgz" -C "$R" . && cp "$R/summary.txt" "$R/regs.txt" "${OUT:-/tmp}/"
el done
