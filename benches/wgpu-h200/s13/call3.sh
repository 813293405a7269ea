#!/bin/bash
# Session 13 (branch s13-wgpu), call 3: PREPARED, NOT RUN (this helper's device time was
# spent). The built defaults of this branch (vec4<f16> workgroup stores, padded staged
# rows, the early walk, the gate/up product on matrix units, the output product on
# subgroups) against main's paths in the same binary (MOA_WGPU_COOP_DECODE=0
# MOA_WGPU_COOP_VSTORE=0 MOA_WGPU_COOP_XPAD=0 MOA_WGPU_COOP_EARLY=0 = main at 43a6fcc),
# A/B/A/B at 16 x 4096, one process each, the first new run with parity. Call 2 measured
# the same set with the output product also on matrix units: 1.985 against 2.010 ms.
# Predicted: new 1.98 ms wall (8 070 tok/s), old 2.01. Then, at 16 x 512, MOA_WGPU_COOP_QKV=1
# (the QKV product on matrix units with RoPE + the cache write in its epilogue, never
# run: a first run in a process of its own, with parity and its start-up check) against
# the new defaults: predicted qkv 7.5 -> ~6.5 us.
# SmolLM2 shape, random weights (seed 7), moa-50, 64 greedy tokens, --profile 5,
# MOA_WGPU_COOP_ATTN=0. ~90 s on a warm machine.
# Carry `.dev-s13-wgpu/` (wpe.gz = release `examples/wgpu_products_engine` of this
# branch's last commit, the Vulkan loader .debs in gl/, this script).
D=$PWD/.dev-s13-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
export MOA_WGPU_COOP_ATTN=0
P="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml"
el setup
LIMIT=${LIMIT:-85}
run() { local name=$1 cap=$2 prompt=$3 par=$4; [ $(( $(date +%s) - s )) -gt $LIMIT ] && { el "skip $name"; return; }; el "== $name"
  RUST_BACKTRACE=1 timeout $cap $W $P --prompt $prompt --parity $par 2>&1 | grep -v XDG > $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; }
OLD="MOA_WGPU_COOP_DECODE=0 MOA_WGPU_COOP_VSTORE=0 MOA_WGPU_COOP_XPAD=0 MOA_WGPU_COOP_EARLY=0"
run new1 40 4096 24
grep -q "no wgpu adapter" $R/new1.txt && { cat $R/new1.txt; exit 1; }
eval "$OLD run old1 25 4096 0"
run new2 25 4096 0
eval "$OLD run old2 25 4096 0"
MOA_WGPU_COOP_QKV=1 run q1 20 512 24
run n512a 15 512 0
MOA_WGPU_COOP_QKV=1 run q2 15 512 0
run n512b 15 512 0
for f in new1 old1 new2 old2 q1 n512a q2 n512b; do
  [ -f $R/$f.txt ] || continue; echo "== $f"
  grep -h -o -E "(NVVM[^;]*|panicked[^;]*|decode: 63 steps x 16 rows[^;]*tok/s|max .logit err. [0-9.]+|argmax equal [0-9/]*|QKV products[^;]*|products failed[^;]*)" $R/$f.txt | tr '\n' ' '; echo
  grep -h -E "qkv:|attention:|merge:|out:|gate_up:|down:|head:|step:" $R/$f.txt | sed -E 's/ +/ /g; s/dispatches, //; s/ host finish//' | cut -c1-80
done
(cd $OUT && tar czf r.tgz r && rm -rf r)
el done
