#!/bin/bash
# Session 12 (branch s12-wgpu), call 5: PREPARED, NOT RUN (this branch's device time was
# spent; call 4's vector stores failed NVIDIA's compiler, "NVVM compilation failed", and
# took DEEP's runs down with them, so neither was measured). Each variant alone,
# A/B/A/B, the one that may fail to compile last (a failed pipeline loses the device:
# that run's process panics, the next runs are separate processes):
#   b  the defaults (x in one round trip, the staged head, subgroup products)
#   d  MOA_WGPU_COOP_HEAD_DEEP=1: the head's weights fetched two stages ahead (f16 arrays
#      as the default: the same types). Predicted head 52-58 -> ~46 us.
#   p  MOA_WGPU_COOP_DECODE=1 MOA_WGPU_COOP_XPAD=1: the matrix-unit output and gate/up
#      products with their staged rows of x padded by 16 bytes (A fragments' rows off the
#      same banks); c = MOA_WGPU_COOP_DECODE=1 unpadded (call 4: 6.3-6.6 / 9.3-10.7 us
#      against the subgroups' 5.8-6.3 / 9.1-9.4). Predicted p: ~5.5 / ~8.5 us.
#   v  MOA_WGPU_COOP_VSTORE=1: the workgroup operands as vec4<f16> (one 8-byte store for
#      4 values of x, two for a 16-byte weight vector instead of 8 scalar stores).
#      Predicted head -7 us, if NVVM takes a vec4<f16> pointer for f16 matrices.
# SmolLM2 shape, random weights (seed 7), 16 x 512 (the products and the head do not
# depend on the prompt), moa-50, 64 greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0; the
# first of each with parity against the CPU reference:
#   b1 d1 p1 b2 d2 p2 c2 v1 v2, then d at 16 x 4096 if time is left. ~75 s warm.
# Carry `.dev-s12-wgpu/` (wpe.gz = release `examples/wgpu_products_engine` of this
# branch at the commit that adds this script, the Vulkan loader .debs in gl/, this script).
D=$PWD/.dev-s12-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
export MOA_WGPU_COOP_ATTN=0
P="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml"
el setup
LIMIT=${LIMIT:-75}
run() { local name=$1 cap=$2 prompt=$3 par=$4; [ $(( $(date +%s) - s )) -gt $LIMIT ] && { el "skip $name"; return; }; el "== $name"
  RUST_BACKTRACE=1 timeout $cap $W $P --prompt $prompt --parity $par 2>&1 | grep -v XDG > $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; }
ab() { local name=$1 c=$2 v=$3 d=$4 x=$5; shift 5
  MOA_WGPU_COOP_DECODE=$c MOA_WGPU_COOP_VSTORE=$v MOA_WGPU_COOP_HEAD_DEEP=$d MOA_WGPU_COOP_XPAD=$x run $name "$@"; }
ab b1 0 0 0 0 35 512 24
grep -q "no wgpu adapter" $R/b1.txt && { cat $R/b1.txt; exit 1; }
ab d1 0 0 1 0 15 512 24
ab p1 1 0 0 1 15 512 24
ab b2 0 0 0 0 12 512 0
ab d2 0 0 1 0 12 512 0
ab p2 1 0 0 1 12 512 0
ab c2 1 0 0 0 12 512 0
ab v1 0 1 0 0 15 512 24
ab v2 1 1 1 1 12 512 0
ab dfull 0 0 1 0 15 4096 0
for f in b1 d1 p1 b2 d2 p2 c2 v1 v2 dfull; do
  [ -f $R/$f.txt ] || continue; echo "== $f"
  grep -h -o -E "(output and gate/up products[^;]*;|decode LM head: [^;]*;[^)]*\))|NVVM[^;]*|failed[^;]*" $R/$f.txt | cut -c1-240
  grep -h -E "parity|^decode:|out:|gate_up:|head:|step:" $R/$f.txt | cut -c1-150
done
(cd $OUT && tar czf r.tgz r && rm -rf r)
el done
