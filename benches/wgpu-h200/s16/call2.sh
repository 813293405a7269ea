#!/bin/bash
# Session 16, branch s16-wgpu, call 2 (END bounds the command, timeout_s END + 20). Carry as call 1.
# most 3 calls; END below bounds the command, timeout_s END + 20). Carry `.dev-s16-wgpu`
# (filled by benches/wgpu-h200/s16/pack.sh): wpe.gz (release examples/
# wgpu_products_engine of this branch), model_gpu.gz (release tests/model_gpu.rs of this
# branch), gl/ (Vulkan loader debs), this script.
#
# Call 1 (same shape) found: read-only loads with the exact grid 16.5 us a layer against
# the scalar decode's 22.25 and the subgroup decode's 23.4, so most of the attention is
# the item's chain of round trips and the tail, not the math; MOA_WGPU_UNCHECKED=1 took
# the step 1880-1883 -> 1808-1823 us (now the default).
# SmolLM2 shape, random weights, 16 x 4096, moa-50, 64 greedy tokens, --profile 5,
# MOA_WGPU_COOP_ATTN=0, one process a run:
#   def  = this branch's defaults (engine shaders unchecked, scalar decode)
#   chk  = MOA_WGPU_UNCHECKED=0 (main's defaults)
#   sg   = MOA_WGSL_SG_DECODE=1, now with the first block's K/V loads issued right after
#          the work item, before the row position, the queries and the barrier
#   rd   = MOA_WGSL_SG_DECODE=read (loads only, the same early structure)
#   rd128, rd1024 = rd with MOA_WGPU_DECODE_CHUNK=128 / 1024 (every layer's chunk): the
#          same bytes over 2x more / 4x fewer items than the default ~256-slot chunks.
# PREDICTIONS (before the call):
#   def vs chk: device step -60..-75 us (as call 1).
#   rd:  16.5 -> 12-14 us (two round trips off each item's chain before its stream).
#   sg:  23.4 -> 19-21 us; below def's ~22.2 it wins the step by 30-90 us.
#   rd128: 14-17 (more items, two waves where registers hold 5 workgroups an SM);
#   rd1024: 18-25 (one or fewer items an SM: few bytes in flight).
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-150}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=/tmp/s16; mkdir -p "$R"
for b in wpe model_gpu; do [ -f "$D/$b.gz" ] && { gunzip -c "$D/$b.gz" > /tmp/$b; chmod +x /tmp/$b; }; done
# The test binary writes its fixtures under the folder it was built in.
for p in /work/wt-s16-wgpu; do [ -e $p ] || { mkdir -p /work && ln -s "$PWD" $p; }; done
for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml --prompt 4096"
env_of() { case $1 in def) echo "";; chk) echo "MOA_WGPU_UNCHECKED=0";; sg) echo "MOA_WGSL_SG_DECODE=1";;
  rd) echo "MOA_WGSL_SG_DECODE=read";; rd128) echo "MOA_WGSL_SG_DECODE=read MOA_WGPU_DECODE_CHUNK=128";;
  rd1024) echo "MOA_WGSL_SG_DECODE=read MOA_WGPU_DECODE_CHUNK=1024";; esac; }
step() { local name=$1 form=$2 par=$3 cap=$4; left $(( END - cap + 5 )) || { el "skip $name"; return; }
  el "== $name"; env $(env_of $form) timeout $cap /tmp/wpe $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: |step:  " "$R/$name.txt" | head -3; }
FORMS=${FORMS:-def chk sg rd rd128 rd1024}
for f in $FORMS; do p=0; case $f in def|sg) p=24;; esac; step ${f}1 $f $p 40; done
for f in def chk sg rd; do step ${f}2 $f 0 25; done
if left $(( END - 40 )) && [ -x /tmp/model_gpu ]; then
  el "== test"; timeout 40 /tmp/model_gpu --exact subgroup_decode_matches_the_cpu_reference --nocapture > "$R/test.txt" 2>&1
  el "test rc=$?"; grep -E "^test |test result|panicked|max .err" "$R/test.txt" | head -8
fi
printf "%-6s %6s %7s %7s %6s %6s %6s %6s %6s %6s %6s %6s %s\n" run tok/s ms/st dev_us attn merge qkv out gateup down head probe parity
for r in 1 2 3; do for f in $FORMS; do t=$R/$f$r.txt; [ -f "$t" ] || continue
  tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
  ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
  us() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
  per() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
  par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
  arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
  printf "%-6s %6s %7s %7s %6s %6s %6s %6s %6s %6s %6s %6s %s\n" $f$r "${tok:--}" "${ms:--}" "$(us step)" "$(per attention)" \
    "$(per merge)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "$(per head)" "$(per probe)" "${par:+$par,$arg}"
done; done | tee "$R/summary.txt"
tar czf "${OUT:-/tmp}/call2.tgz" -C "$R" . && cp "$R/summary.txt" "${OUT:-/tmp}/"
el done
