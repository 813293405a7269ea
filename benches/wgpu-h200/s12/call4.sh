#!/bin/bash
# Session 12 (branch s12-wgpu), call 4: after call 3 made x's one-round-trip staging the
# default (XSTAGE 1 in coop_head.wgsl and coop_matvec.wgsl), two next steps, A/B/A/B:
#   v  MOA_WGPU_COOP_VSTORE=1: the workgroup operands stored as packed vectors, one store
#      each (the head's weights: one 16-byte store per fetched vector instead of 8 f16
#      stores, 4-way conflicted, no unpacking; x: 4 f16 packed in one 8-byte store), and
#      coop_matvec.wgsl's staged rows padded by 16 bytes (their A fragments' 16 rows were
#      K · 2 bytes apart: all on the same banks). Predicted: head 52-61 -> ~46 us (call 2's
#      DIAG 3 put ~9 us in the weight stores); the matrix-unit output and gate/up products
#      6.9 / 9.6 -> ~5.5 / ~8.5 us (under the subgroup products' 5.8-6.3 / 9.1-9.4).
#   d  + MOA_WGPU_COOP_HEAD_DEEP=1: the head's weights fetched two stages ahead (two
#      register sets): predicted a further -6 us (the stores of each of the 6 stages no
#      longer wait a round trip).
# SmolLM2 shape, random weights (seed 7), 16 rows x 512 (the products and the head do not
# depend on the prompt), moa-50, 64 greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0, one
# process per run; the runs a/v/d with the matrix-unit output and gate/up products
# (MOA_WGPU_COOP_DECODE=1), s with the subgroup ones (the default) and v + d; the first of
# each with parity against the CPU reference (and every matrix-unit kernel's start-up
# check):
#   a1 v1 d1 s1 a2 v2 d2 s2, then s and c (= d) at 16 x 4096 for the step if time is left.
# Carry `.dev-s12-wgpu/` (wpe.gz = release `examples/wgpu_products_engine` of this
# branch at the commit that adds this script, the Vulkan loader .debs in gl/, this
# script). About 75 s on a warm machine (the first run compiles the pipelines: ~25 s).
D=$PWD/.dev-s12-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
export MOA_WGPU_COOP_ATTN=0
P="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml"
el setup
LIMIT=${LIMIT:-66}
run() { local name=$1 cap=$2 prompt=$3 par=$4; [ $(( $(date +%s) - s )) -gt $LIMIT ] && { el "skip $name"; return; }; el "== $name"
  RUST_BACKTRACE=1 timeout $cap $W $P --prompt $prompt --parity $par 2>&1 | grep -v XDG > $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; }
export MOA_WGPU_COOP_DECODE MOA_WGPU_COOP_VSTORE MOA_WGPU_COOP_HEAD_DEEP
ab() { local name=$1 c=$2 v=$3 d=$4; shift 4
  MOA_WGPU_COOP_DECODE=$c MOA_WGPU_COOP_VSTORE=$v MOA_WGPU_COOP_HEAD_DEEP=$d run $name "$@"; }
ab a1 1 0 0 35 512 24
grep -q "no wgpu adapter" $R/a1.txt && { cat $R/a1.txt; exit 1; }
ab v1 1 1 0 15 512 24
ab d1 1 1 1 15 512 24
ab s1 0 1 1 12 512 0
ab a2 1 0 0 12 512 0
ab v2 1 1 0 12 512 0
ab d2 1 1 1 12 512 0
ab s2 0 1 1 12 512 0
ab sfull 0 1 1 15 4096 0
ab cfull 1 1 1 15 4096 0
for f in a1 v1 d1 s1 a2 v2 d2 s2 sfull cfull; do
  [ -f $R/$f.txt ] || continue; echo "== $f"
  grep -h -o -E "(output and gate/up products[^;]*;|decode LM head: [^;]*;[^)]*\))|failed[^;]*" $R/$f.txt | cut -c1-240
  grep -h -E "parity|^decode:|out:|gate_up:|head:|step:" $R/$f.txt | cut -c1-150
done
(cd $OUT && tar czf r.tgz r && rm -rf r)
el done
