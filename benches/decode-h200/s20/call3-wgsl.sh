#!/bin/bash
# Session 20, branch s20-wgsl, call 3 (NOT RUN in session 20: this helper's device time
# was spent; for the lead's closing call): the new default (the flat decode with 8
# subgroups a workgroup at head_dim <= 64 in a GQA group, the work list's model at 396
# resident workgroups) through the default path, against session 19's default
# (MOA_WGSL_SG_FLAT_SUBGROUPS=4: 4 subgroups, the model at 528) and the 4-subgroup form
# with the model at its own residency (MOA_WGSL_SG_FLAT_SUBGROUPS=4
# MOA_WGPU_DECODE_RESIDENT=792), in the engine's step; then check of the default.
#   END=75 bash .dev-s20-wgsl/call3-wgsl.sh   (run tool timeout_s >= END + 15)
# Carry as call1 (pack-wgsl.sh; binaries of this branch's last commit).
# PREDICTIONS: new 17.9-18.5 us a layer (call 2's w: 17.91-18.45), old 19.4-19.6, o792
#   18.0-18.6; parity 0.0471, 3/3; check passes.
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-75}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=/tmp/s20wgsl3; rm -rf "$R"; mkdir -p "$R"
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "/tmp/$b-s20wgsl" && chmod +x "/tmp/$b-s20wgsl" || { el "no $b.gz"; exit 1; }; done
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
export MOA_WGPU_COOP_ATTN=0
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
env_of() { case $1 in old) echo "MOA_WGSL_SG_FLAT_SUBGROUPS=4";; o792) echo "MOA_WGSL_SG_FLAT_SUBGROUPS=4 MOA_WGPU_DECODE_RESIDENT=792";; esac; }
step() { local name=$1 form=$2 par=$3 cap=$4; left $(( END - cap )) || { el "skip $name"; return; }
  el "== $name ($(env_of $form))"; env $(env_of $form) timeout $cap /tmp/wpe-s20wgsl $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: |attention: " "$R/$name.txt" | head -3; }
RUNS="new1:new:24:30 old1:old:0:16 new2:new:0:14 old2:old:0:14 o7921:o792:0:14 new3:new:0:14 old3:old:0:14 o7922:o792:0:14"
for r in $RUNS; do IFS=: read -r name form par cap <<< "$r"; step "$name" "$form" "$par" "$cap"; done
if left $(( END - 12 )); then
  MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late MOA_WGSL_SG_SIZE=32 timeout 12 /tmp/wdb-s20wgsl check plans/fixture-gqa.toml plans/fixture-mha.toml > "$R/check.txt" 2>&1; el "check rc=$?"; tail -5 "$R/check.txt"
fi
printf "%-6s %-5s %6s %7s %7s %6s %6s %s\n" run form tok/s ms/st dev_us attn merge parity
for r in $RUNS; do IFS=: read -r name form _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
  tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
  ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
  us() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
  per() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
  par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
  arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
  printf "%-6s %-5s %6s %7s %7s %6s %6s %s\n" $name $form "${tok:--}" "${ms:--}" "$(us step)" "$(per attention)" "$(per merge)" "${par:+$par,$arg}"
done | tee "$R/summary.txt"
tar czf "${OUT:-/tmp}/s20-wgsl-call3.tgz" -C "$R" . && cp "$R/summary.txt" "${OUT:-/tmp}/"
el done
