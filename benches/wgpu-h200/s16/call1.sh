#!/bin/bash
# Session 16, branch s16-wgpu, call 1 (cap: 420 s of device time for this helper over at
# most 3 calls; END below bounds the command, timeout_s END + 20). Carry `.dev-s16-wgpu`
# (filled by benches/wgpu-h200/s16/pack.sh): wpe.gz (release examples/
# wgpu_products_engine of this branch), model_gpu.gz (release tests/model_gpu.rs of this
# branch), gl/ (Vulkan loader debs), this script.
#
# SmolLM2 shape, random weights, 16 x 4096, moa-50, 64 greedy tokens, --profile 5,
# MOA_WGPU_COOP_ATTN=0, one process a run, A/B/A/B:
#   base = the defaults (scalar `quad` decode, 22.4 us a layer, merge 4.1)
#   sg   = MOA_WGSL_SG_DECODE=1: the decode on subgroups (decode_sg.wgsl.j2): same work
#          list (grid), partials and merge; a subgroup walks its own 32-slot blocks with
#          the online softmax in registers, no barrier between blocks.
#   rd   = MOA_WGSL_SG_DECODE=read: the same kernel's K and V loads only (timing
#          diagnostic, wrong results): what the work list's exact grid reaches with
#          loads and nothing else (question (a) of the brief).
#   un   = MOA_WGPU_UNCHECKED=1: the engine's own shaders (products, norms, head) without
#          naga's index clamps and loop counters (the decode attention already is).
# PREDICTIONS (written before the call):
#   rd:  attention 22.4 -> 9-12 us a layer (a layer's ~26 MB at the copy's 4.1 TB/s is
#        6.3 us, plus the dispatch's ~2.2 us barrier and one item's latency chain of
#        ~2 us): so 10+ us of the 22.4 are the kernel body's chain, not the grid.
#   sg:  attention 22.4 -> 11-15 us a layer (no per-tile barriers; one item = item load ->
#        q staging + K/V loads -> 1-3 blocks of (loads, math) per subgroup -> one
#        barrier -> partial stores); merge unchanged 4.1; device step 1.89 ->
#        1.60-1.72 ms (0.85-0.91x); parity as base (max |logit err| ~0.05, argmax 3/3).
#   un:  each product -0.2..-0.8 us (clamps in the K loop), step -20..-80 us.
# Then the new parity test on the H200 (tests/model_gpu.rs
# subgroup_decode_matches_the_cpu_reference: subgroup 32, head_dim 32 and 64).
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-200}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=${OUT:-/tmp}/s16; mkdir -p "$R"
for b in wpe model_gpu; do [ -f "$D/$b.gz" ] && { gunzip -c "$D/$b.gz" > /tmp/$b; chmod +x /tmp/$b; }; done
# The test binary writes its fixtures under the folder it was built in.
for p in /work/wt-s16-wgpu; do [ -e $p ] || { mkdir -p /work && ln -s "$PWD" $p; }; done
for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml --prompt 4096"
env_of() { case $1 in base) echo "";; sg) echo "MOA_WGSL_SG_DECODE=1";; rd) echo "MOA_WGSL_SG_DECODE=read";;
  un) echo "MOA_WGPU_UNCHECKED=1";; sgun) echo "MOA_WGSL_SG_DECODE=1 MOA_WGPU_UNCHECKED=1";; esac; }
step() { local name=$1 form=$2 par=$3 cap=$4; left $(( END - cap + 5 )) || { el "skip $name"; return; }
  el "== $name"; env $(env_of $form) timeout $cap /tmp/wpe $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: |step:  " "$R/$name.txt" | head -3; }
FORMS=${FORMS:-base sg rd un}
for f in $FORMS; do p=24; [ $f = rd ] && p=0; step ${f}1 $f $p 40; done
for f in $FORMS; do step ${f}2 $f 0 25; done
if left $(( END - 40 )) && [ -x /tmp/model_gpu ]; then
  el "== test"; timeout 40 /tmp/model_gpu --exact subgroup_decode_matches_the_cpu_reference --nocapture > "$R/test.txt" 2>&1
  el "test rc=$?"; grep -E "^test |test result|panicked|max .err" "$R/test.txt" | head -8
fi
for f in $FORMS; do left $(( END - 25 )) && step ${f}3 $f 0 25; done
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
el done
