#!/bin/bash
# Session 12 (branch s12-wgpu), call 2: where the staged LM head's 65-70 us go (call 1:
# coop_head.wgsl 66-70 us against 75-77 for coop_matvec.wgsl, for 56.6 MB = 13.5 us at
# 4.2 TB/s). SmolLM2 shape, random weights (seed 7), 16 x 512 (the head does not depend on
# the prompt), moa-50, 64 greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0; one process
# per run. MOA_WGPU_COOP_HEAD_DIAG (coop_head.wgsl's DIAG; wrong results, no start-up
# check): 1 no weights fetched, stored or multiplied; 2 x not staged; 3 one shared store
# per 16-byte weight vector instead of 8; 4 no multiply-adds. Then 2 against 3 blocks of 64
# columns a workgroup, twice (A/B/A/B).
# Carry `.dev-s12-wgpu/` (wpe.gz = release `examples/wgpu_products_engine` of this branch,
# the Vulkan loader .debs in gl/, this script).
D=$PWD/.dev-s12-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
export MOA_WGPU_COOP_ATTN=0
P="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml"
el setup
LIMIT=${LIMIT:-70}
run() { local name=$1 cap=$2 prompt=$3 par=$4; [ $(( $(date +%s) - s )) -gt $LIMIT ] && { el "skip $name"; return; }; el "== $name"
  RUST_BACKTRACE=1 timeout $cap $W $P --prompt $prompt --parity $par 2>&1 | grep -v XDG > $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; }
run h_b2 20 512 0
grep -q "no wgpu adapter" $R/h_b2.txt && { cat $R/h_b2.txt; exit 1; }
for d in 1 2 3 4; do MOA_WGPU_COOP_HEAD_DIAG=$d run h_d$d 15 512 0; done
MOA_WGPU_COOP_HEAD_BLOCKS=3 run h_b3 15 512 0
run h_b2b 15 512 0
MOA_WGPU_COOP_HEAD_BLOCKS=3 run h_b3b 15 512 0
for f in h_b2 h_d1 h_d2 h_d3 h_d4 h_b3 h_b2b h_b3b; do
  [ -f $R/$f.txt ] || continue; echo "== $f"
  grep -h -o -E "decode LM head: [^;]*" $R/$f.txt | cut -c1-160
  grep -h -E "^decode:|head:|argmax:|step:" $R/$f.txt | cut -c1-100
done
(cd $OUT && tar czf r.tgz r && rm -rf r)
el done
