#!/bin/bash
# Session 13 (branch s13-wgpu), call 2: the candidate defaults against main's, A/B/A/B.
#   b  the defaults (subgroup products, the staged head with scalar f16 stores)
#   n  MOA_WGPU_COOP_VSTORE=1 MOA_WGPU_COOP_DECODE=1 MOA_WGPU_COOP_EARLY=1 MOA_WGPU_COOP_XPAD=1:
#      vec4<f16> workgroup stores (call 1's one run: head 54.5 -> 30.6 us, but that run's
#      profile baseline was off: probe 1.89 against 2.14-2.18 us, probe_free 0), the output
#      and gate/up products on matrix units with every B fragment loaded before x is
#      staged (call 1: out 5.72-5.80 against 6.10-6.14, gate/up 8.53-8.74 against
#      9.26-9.31), the staged rows of x padded (call 1, one run: gate/up -0.4-0.7 us).
#   v  MOA_WGPU_COOP_VSTORE=1 alone (the head's share of n).
# Same arguments as call 1 (SmolLM2 shape, random weights, seed 7, moa-50, 64 greedy tokens,
# --profile 5, MOA_WGPU_COOP_ATTN=0), 16 x 512, then n and b at 16 x 4096. ~80 s.
# Carry `.dev-s13-wgpu/` (the binary of call 1, 76e3a59, the loader .debs, this script).
D=$PWD/.dev-s13-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
export MOA_WGPU_COOP_ATTN=0
P="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml"
el setup
LIMIT=${LIMIT:-72}
run() { local name=$1 cap=$2 prompt=$3 par=$4; [ $(( $(date +%s) - s )) -gt $LIMIT ] && { el "skip $name"; return; }; el "== $name"
  RUST_BACKTRACE=1 timeout $cap $W $P --prompt $prompt --parity $par 2>&1 | grep -v XDG > $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; }
N="MOA_WGPU_COOP_VSTORE=1 MOA_WGPU_COOP_DECODE=1 MOA_WGPU_COOP_EARLY=1 MOA_WGPU_COOP_XPAD=1"
eval "$N run n1 40 512 24"
grep -q "no wgpu adapter" $R/n1.txt && { cat $R/n1.txt; exit 1; }
run b1 15 512 0
eval "$N run n2 15 512 0"
run b2 15 512 0
MOA_WGPU_COOP_VSTORE=1 run v1 15 512 0
eval "$N run nfull 25 4096 0"
run bfull 25 4096 0
for f in n1 b1 n2 b2 v1 nfull bfull; do
  [ -f $R/$f.txt ] || continue; echo "== $f"
  grep -h -o -E "(NVVM[^;]*|panicked[^;]*|decode: 63 steps x 16 rows[^;]*tok/s|argmax equal [0-9/]*)" $R/$f.txt | tr '\n' ' '; echo
  grep -h -E "qkv:|out:|gate_up:|down:|head:|step:|probe:" $R/$f.txt | sed -E 's/ +/ /g; s/dispatches, //; s/ host finish//' | cut -c1-80
done
(cd $OUT && tar czf r.tgz r && rm -rf r)
el done
