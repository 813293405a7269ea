#!/bin/bash
# Session 13 (branch s13-wgpu), call 1: the matrix-unit decode products with their weights
# loaded before x is staged, and the variants session 12 prepared but never ran.
#   b  the defaults (subgroup products, the staged head)
#   e  MOA_WGPU_COOP_DECODE=1 MOA_WGPU_COOP_EARLY=1: the output and gate/up products on
#      matrix units, every B fragment loaded before x is staged (their round trips
#      overlap), the output product's A fragments straight from the f16 attention output
#      (no staging, no barrier). Predicted: out 6.3-6.9 -> ~5.3, gate/up 9.3-9.8 -> ~8.7
#      (subgroups: 5.8-6.3 / 9.1-9.4).
#   m  e + MOA_WGPU_COOP_DOWN=1: the gate/up product writes its SwiGLU output in f16 and
#      the down product runs on matrix units with its A fragments straight from it.
#      Predicted: down 8.3-8.7 -> ~5.5.
#   d  MOA_WGPU_COOP_HEAD_DEEP=1 (session 12's, never run): the head's weights two
#      stages ahead. Predicted head 52-58 -> ~46.
#   c  MOA_WGPU_COOP_DECODE=1 (session 12's form, the reference for e)
#   x  m + MOA_WGPU_COOP_XPAD=1 (gate/up's staged rows padded by 16 bytes)
#   v  MOA_WGPU_COOP_VSTORE=1 (vec4<f16> workgroup stores; may fail NVIDIA's compiler and
#      lose the device, so last of the 16 x 512 runs)
# SmolLM2 shape, random weights (seed 7), 16 rows x 512 (products and head do not depend on
# the prompt), moa-50, 64 greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0, one process a
# run; the first of b, e, m, d with parity against the CPU reference. Then b and m+d at
# 16 x 4096 for the step. ~140 s on a warm machine.
# Carry `.dev-s13-wgpu/` (wpe.gz = release `examples/wgpu_products_engine` of this branch,
# the Vulkan loader .debs in gl/, this script).
D=$PWD/.dev-s13-wgpu
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/r; mkdir -p $R
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
gunzip -c $D/wpe.gz > /tmp/wpe; chmod +x /tmp/wpe; W=/tmp/wpe
export MOA_WGPU_COOP_ATTN=0
P="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml"
el setup
LIMIT=${LIMIT:-150}
run() { local name=$1 cap=$2 prompt=$3 par=$4; [ $(( $(date +%s) - s )) -gt $LIMIT ] && { el "skip $name"; return; }; el "== $name"
  RUST_BACKTRACE=1 timeout $cap $W $P --prompt $prompt --parity $par 2>&1 | grep -v XDG > $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; }
E="MOA_WGPU_COOP_DECODE=1 MOA_WGPU_COOP_EARLY=1"
run b1 40 512 24
grep -q "no wgpu adapter" $R/b1.txt && { cat $R/b1.txt; exit 1; }
eval "$E run e1 20 512 24"
eval "$E MOA_WGPU_COOP_DOWN=1 run m1 20 512 24"
MOA_WGPU_COOP_HEAD_DEEP=1 run d1 20 512 24
run b2 15 512 0
eval "$E run e2 15 512 0"
eval "$E MOA_WGPU_COOP_DOWN=1 run m2 15 512 0"
MOA_WGPU_COOP_HEAD_DEEP=1 run d2 15 512 0
MOA_WGPU_COOP_DECODE=1 run c 15 512 0
eval "$E MOA_WGPU_COOP_DOWN=1 MOA_WGPU_COOP_XPAD=1 run x 15 512 0"
run bfull 30 4096 0
eval "$E MOA_WGPU_COOP_DOWN=1 MOA_WGPU_COOP_HEAD_DEEP=1 run mdfull 30 4096 0"
MOA_WGPU_COOP_VSTORE=1 run v 15 512 0
for f in b1 e1 m1 d1 b2 e2 m2 d2 c x bfull mdfull v; do
  [ -f $R/$f.txt ] || continue; echo "== $f"
  grep -h -o -E "(decode products: .*|NVVM[^;]*|panicked[^;]*)" $R/$f.txt | cut -c1-520
  grep -h -E "parity|^decode:|qkv:|out:|gate_up:|down:|head:|argmax:|step:" $R/$f.txt | cut -c1-160
done
(cd $OUT && tar czf r.tgz r && rm -rf r)
el done
