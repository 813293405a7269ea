#!/bin/bash
# Session 12 (branch s12-wgpu), call 3 (prepared, NOT run: this helper's three device calls
# were spent): x staged in one round trip in the matrix-unit decode kernels
# (MOA_WGPU_COOP_XSTAGE=1: coop_head.wgsl's and coop_matvec.wgsl's XSTAGE 1) against their
# default loops of dependent loads. Call 2 put ~20 us of the staged head's 63-67 us in
# those loops (DIAG 1: 23.7 us with no weights at all; DIAG 2, the second loop skipped:
# 52.6). Predicted: head 66 -> ~48 us; and the matrix-unit output and gate/up products
# (MOA_WGPU_COOP_DECODE=1, 9.8 and 19.2 us in session 11 against 5.7-6.0 and 8.8-9.2 on
# subgroups, one and two such loops each) at or under the subgroup products.
# SmolLM2 shape, random weights (seed 7), 16 rows, moa-50, 64 greedy tokens, --profile 5,
# MOA_WGPU_COOP_ATTN=0, one process per run, at 16 x 512 (the products and the head do not
# depend on the prompt; the parity runs check logits and greedy tokens against the CPU
# reference, the start-up checks each matrix-unit kernel):
#   x0 / x1 / x0 / x1      defaults / MOA_WGPU_COOP_XSTAGE=1
#   c0                     MOA_WGPU_COOP_DECODE=1 (session 11's loss, re-measured here)
#   c1 / c1b               MOA_WGPU_COOP_DECODE=1 MOA_WGPU_COOP_XSTAGE=1
# then x1 and c1 at 16 x 4096 for the step. About 90 s on a warm machine (the first run
# of a fresh machine compiles the pipelines: up to ~25 s).
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
LIMIT=${LIMIT:-110}
run() { local name=$1 cap=$2 prompt=$3 par=$4; [ $(( $(date +%s) - s )) -gt $LIMIT ] && { el "skip $name"; return; }; el "== $name"
  RUST_BACKTRACE=1 timeout $cap $W $P --prompt $prompt --parity $par 2>&1 | grep -v XDG > $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; }
run x0a 35 512 0
grep -q "no wgpu adapter" $R/x0a.txt && { cat $R/x0a.txt; exit 1; }
MOA_WGPU_COOP_XSTAGE=1 run x1a 20 512 24
run x0b 15 512 0
MOA_WGPU_COOP_XSTAGE=1 run x1b 15 512 0
MOA_WGPU_COOP_DECODE=1 run c0 15 512 0
MOA_WGPU_COOP_DECODE=1 MOA_WGPU_COOP_XSTAGE=1 run c1 20 512 24
MOA_WGPU_COOP_DECODE=1 MOA_WGPU_COOP_XSTAGE=1 run c1b 15 512 0
MOA_WGPU_COOP_XSTAGE=1 run x1full 30 4096 0
MOA_WGPU_COOP_DECODE=1 MOA_WGPU_COOP_XSTAGE=1 run c1full 30 4096 0
for f in x0a x1a x0b x1b c0 c1 c1b x1full c1full; do
  [ -f $R/$f.txt ] || continue; echo "== $f"
  grep -h -o -E "(output and gate/up products[^;]*;|decode LM head: [^;]*;[^)]*\))" $R/$f.txt | cut -c1-220
  grep -h -E "parity|^decode:|qkv:|out:|gate_up:|down:|head:|argmax:|step:" $R/$f.txt | cut -c1-160
done
(cd $OUT && tar czf r.tgz r && rm -rf r)
el done
