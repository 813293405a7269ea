#!/bin/bash
# Session 12 (branch s12-wgpu), call 1: the decode step outside the attention kernel.
# SmolLM2 shape, random weights (seed 7), 16 rows, moa-50, 64 greedy tokens, --profile 5,
# MOA_WGPU_COOP_ATTN=0 (decode unchanged, loads in 2 s); one process per run.
#   base  MOA_WGPU_COOP_HEAD=direct: main's LM head (coop_matvec.wgsl, B fragments read
#         straight from storage)
#   new   this branch's default: coop_head.wgsl (weights staged through workgroup memory
#         by 16-byte loads, 192 of K a stage, 2 blocks of 64 columns a workgroup)
#   base, new, base, new at 16 x 4096 (A/B/A/B); then at 16 x 512 (the products and the
#   head do not depend on the prompt): new, head variants (1 and 3 blocks a workgroup,
#   96 of K a stage), and the subgroup products' timing diagnostics MOA_WGPU_SG_DIAG=1
#   (no K loop) and 2 (row 0's x for all 16 rows). Every profile also times the dispatch
#   probes: "probe" (one-workgroup gathers, a barrier between each), "probe_wide" (the
#   same with the step's widest grid), "probe_free" (one-workgroup read-only kernels: no
#   barrier).
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
ldconfig -p | grep -E "libvulkan|libGLX|libEGL" | head -5; ls /usr/local/nvidia/share/vulkan/icd.d/
el setup
# Each run only while the call is under LIMIT seconds (the helper's device cap).
LIMIT=${LIMIT:-150}
run() { local name=$1 cap=$2 prompt=$3 par=$4; [ $(( $(date +%s) - s )) -gt $LIMIT ] && { el "skip $name"; return; }; el "== $name"
  RUST_BACKTRACE=1 timeout $cap $W $P --prompt $prompt --parity $par 2>&1 | grep -v XDG > $R/$name.txt
  el "$name rc=${PIPESTATUS[0]}"; }
base() { MOA_WGPU_COOP_HEAD=direct run "$@"; }
base base1 40 4096 0
# (The first try of this call found no Vulkan loader: only 4 of the 7 .debs were carried.)
grep -q "no wgpu adapter" $R/base1.txt && { cat $R/base1.txt; exit 1; }
run new1 40 4096 24
base base2 30 4096 0
run new2 30 4096 0
run s_new 20 512 0
MOA_WGPU_COOP_HEAD_BLOCKS=1 run s_b1 20 512 0
MOA_WGPU_COOP_HEAD_BLOCKS=3 run s_b3 20 512 0
MOA_WGPU_COOP_HEAD_KS=96 run s_ks96 20 512 0
MOA_WGPU_SG_DIAG=1 run s_diag1 20 512 0
MOA_WGPU_SG_DIAG=2 run s_diag2 20 512 0
for f in base1 new1 base2 new2 s_new s_b1 s_b3 s_ks96 s_diag1 s_diag2; do
  [ -f $R/$f.txt ] || continue; echo "== $f"
  grep -h -E "parity|LM head|^decode:|qkv:|attention:|merge:|out:|gate_up:|down:|head:|argmax:|step:|probe" $R/$f.txt | cut -c1-400
done
(cd $OUT && tar czf r.tgz r && rm -rf r)
el done
