#!/bin/bash
# Session 13, lead call 2: call 1 measured the merged main's engine step at 16 x 4096 with
# the fused WGSL merge (s13-wgsl's default for SmolLM2) slower than session 12's main in
# the engine (attention 28.7 us a layer against 22.1 + 4.2 separate). A/B/A/B of three
# binaries, one process each: `off` = the merged main with the fused merge off
# (DECODE_FUSED_OUTPUTS_PER_INVOCATION = 0), `new` = merged main (fused on), `old` = 43a6fcc.
D=$PWD/.dev-s13-lead
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/lead2; mkdir -p $R
left() { [ $(( $(date +%s) - s )) -lt $1 ]; }
for b in wpe-old wpe-new wpe-off; do gunzip -c $D/$b.gz > /tmp/$b; chmod +x /tmp/$b; done
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml"
run() { local name=$1 bin=$2 par=$3 cap=$4; left 110 || { el "skip $name"; return; }; el "== $name"
  timeout $cap $bin $A --prompt 4096 --parity $par 2>&1 | grep -v XDG > $R/$name.txt; el "$name rc=${PIPESTATUS[0]}"; }
run off1 /tmp/wpe-off 24 40
run old1 /tmp/wpe-old 0 35
run new1 /tmp/wpe-new 0 20
run off2 /tmp/wpe-off 0 20
run old2 /tmp/wpe-old 0 20
run new2 /tmp/wpe-new 0 20
for f in off1 old1 new1 off2 old2 new2; do [ -f $R/$f.txt ] || continue; echo "== $f"
  grep -h -o -E "(panicked[^;]*|decode: 63 steps x 16 rows[^;]*tok/s|max .logit err. [0-9.]+|argmax equal [0-9/]*)" $R/$f.txt | tr '\n' ' '; echo
  grep -h -E "attention:|merge:|gate_up:|head:|step:" $R/$f.txt | sed -E 's/ +/ /g' | cut -c1-90
done
el done
