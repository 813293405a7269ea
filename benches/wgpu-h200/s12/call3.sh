#!/bin/bash
# Session 12 (branch s12-wgpu), call 3 (prepared, NOT run: this helper's device calls were
# spent): the staged LM head with x staged in one round trip (MOA_WGPU_COOP_HEAD_XSTAGE=1,
# coop_head.wgsl's XSTAGE 1) against the default two loops of dependent loads. Call 2 put
# ~20 us of the head's 63-67 us in those loops (DIAG 1: 23.7 us with no weights at all;
# DIAG 2, the second loop skipped: 52.6). Predicted: head 66 -> ~48 us.
# SmolLM2 shape, random weights (seed 7), 16 rows, moa-50, 64 greedy tokens, --profile 5,
# MOA_WGPU_COOP_ATTN=0, one process per run: x0 / x1 / x0 / x1 at 16 x 512 (the head does
# not depend on the prompt; the parity check of x1 covers its logits and argmax pairs),
# then x1 at 16 x 4096 for the step. About 60 s on a warm machine (the first run of a
# fresh machine compiles the pipelines: up to ~25 s).
# Carry `.dev-s12-wgpu/` (wpe.gz = release `examples/wgpu_products_engine` of this branch
# at its last commit, the Vulkan loader .debs in gl/, this script).
D=$PWD/.dev-s12-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
export MOA_WGPU_COOP_ATTN=0
P="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml"
el setup
LIMIT=${LIMIT:-90}
run() { local name=$1 cap=$2 prompt=$3 par=$4; [ $(( $(date +%s) - s )) -gt $LIMIT ] && { el "skip $name"; return; }; el "== $name"
  RUST_BACKTRACE=1 timeout $cap $W $P --prompt $prompt --parity $par 2>&1 | grep -v XDG > $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; }
run x0a 35 512 0
grep -q "no wgpu adapter" $R/x0a.txt && { cat $R/x0a.txt; exit 1; }
MOA_WGPU_COOP_HEAD_XSTAGE=1 run x1a 20 512 24
run x0b 15 512 0
MOA_WGPU_COOP_HEAD_XSTAGE=1 run x1b 15 512 0
MOA_WGPU_COOP_HEAD_XSTAGE=1 run x1full 30 4096 0
for f in x0a x1a x0b x1b x1full; do
  [ -f $R/$f.txt ] || continue; echo "== $f"
  grep -h -o -E "decode LM head: [^;]*;[^)]*\)" $R/$f.txt | cut -c1-220
  grep -h -E "parity|^decode:|head:|argmax:|step:" $R/$f.txt | cut -c1-160
done
(cd $OUT && tar czf r.tgz r && rm -rf r)
el done
