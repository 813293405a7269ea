#!/bin/bash
# Session 16, branch s16-wgpu2, call 3: run by the lead inside the session's closing call.
#   bash .dev-s16-wgpu2/call3.sh            (END=70 by default; run tool timeout_s >= END + 25)
# Carry `.dev-s16-wgpu2` (filled by benches/wgpu-h200/s16/pack3.sh): wpe.gz (release
# examples/wgpu_products_engine of s16-wgpu2), this script. Vulkan: the loader is taken
# as installed where `ldconfig -p` lists libvulkan.so.1 (the closing call unpacks its gl/
# debs first); otherwise the debs of GL=<folder>, of .dev-*/gl/ or of this folder's gl/
# are unpacked as call2.sh does (dpkg -x: idempotent).
#
# SmolLM2 shape, random weights, 16 x 4096, moa-50, 64 greedy tokens, --profile 5
# (us per dispatch, best of 3), MOA_WGPU_COOP_ATTN=0, one process a run, every run under
# `timeout`, a run started only while END leaves room for its cap (about 11 s a run
# once the shaders are cached, ~20 s a new form's first: END=70 is expected to reach
# def1 p21 def2 p22 and maybe p2rd1; END=150 all ten):
#   def  = main's defaults (the scalar decode, decode.wgsl.j2)
#   p2   = MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_PIPE=2: decode_sg_pipe.wgsl.j2, form (a) + (b):
#          first block's K/V issued from the work item alone (before the row position, Q
#          and the barrier), the next block's K/V in flight during this block's math (same
#          registers), 2 consecutive items a workgroup (the next item's words read while
#          this one streams, its first block issued at the end of this one's last; Q kept
#          across items of one segment; workgroups past ceil(n_items / 2) end at once)
#   p1   = the same at 1 item a workgroup: form (a) alone
#   p4   = 4 items a workgroup (~100 workgroups: fewer than the 132 SMs)
#   p2rd, p1rd = the loads-only twins (MOA_WGSL_SG_DECODE=read): wrong results, timing only
#   rd   = s16-wgpu's loads-only twin of the unpipelined form (16.5 us in its call 1)
# Parity (--parity 24: 1 row x 24 tokens + 2 decode steps against the CPU reference) on
# the first run of each full form.
#
# PREDICTIONS (written before the call; the registers are not printed by this bench: the
# pipelined form holds ~64 load + ~30 state registers, near s15's 128 limit):
#   def:  attention 22.1-22.8 us a layer, device step 1.83-1.85 ms (s16-wgpu call 2).
#   p1rd: 12-15 us (s16-wgpu's 16.5 minus the row position + Q round trips before the
#         first loads and the cold start of each subgroup's second block). Risk: s16-wgpu's
#         hoisted form went 16.5 -> 20.8 for reasons not found; if p1rd > 16.5 the chain is
#         not the lever as this form removes it.
#   p2rd: 11-14 us (item 2's chain hidden behind item 1's stream; half the workgroups, one
#         per SM and a half: the load per SM is uneven, which may eat the gain).
#   p1:   18-22 us (rd's gain carried over with the body's ~6 us of math).
#   p2:   17-21 us; below def's 22.2 it wins the device step by 30-150 us (30 layers).
#   p4:   18-30 us (too few workgroups: s16-wgpu's 1024-slot chunks took 43).
#   Parity: max |logit err| ~0.05 as every form (base 0.0507), argmax 3/3.
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-70}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=/tmp/s16w2; rm -rf "$R"; mkdir -p "$R"
gunzip -c "$D/wpe.gz" > /tmp/wpe-s16w2 && chmod +x /tmp/wpe-s16w2 || { el "no wpe.gz in $D"; exit 1; }
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for g in ${GL:-} "$D/gl" .dev-*/gl; do
    ls "$g"/*.deb > /dev/null 2>&1 || continue
    el "unpacking $g"; for f in "$g"/*.deb; do dpkg -x "$f" /; done; ldconfig; break
  done
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export MOA_WGPU_COOP_ATTN=0
A=${A:-"--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml --prompt 4096"}
env_of() { case $1 in def) echo "";;
  p1) echo "MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_PIPE=1";; p2) echo "MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_PIPE=2";;
  p4) echo "MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_PIPE=4";;
  p1rd) echo "MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_PIPE=1";; p2rd) echo "MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_PIPE=2";;
  rd) echo "MOA_WGSL_SG_DECODE=read";; esac; }
step() { local name=$1 form=$2 par=$3 cap=$4; left $(( END - cap + 5 )) || { el "skip $name"; return; }
  el "== $name"; env $(env_of $form) timeout $cap /tmp/wpe-s16w2 $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: |attention: " "$R/$name.txt" | head -3; }
# name:form:parity tokens:cap (s). A/B/A/B of the default and the two-item form first (a
# new form's first load compiles its 30 shaders, ~10 s on the H200; a repeat loads from
# the driver's cache), then the twins and the rest as END allows.
RUNS=${RUNS:-"def1:def:24:35 p21:p2:24:30 def2:def:0:20 p22:p2:0:20 p2rd1:p2rd:0:25 p11:p1:24:25 p1rd1:p1rd:0:25 p41:p4:24:25 rd1:rd:0:20 p12:p1:0:20"}
for r in $RUNS; do IFS=: read -r name form par cap <<< "$r"; step "$name" "$form" "$par" "$cap"; done
printf "%-6s %6s %7s %7s %6s %6s %6s %6s %6s %6s %6s %6s %s\n" run tok/s ms/st dev_us attn merge qkv out gateup down head probe parity
for r in $RUNS; do name=${r%%:*}; t=$R/$name.txt; [ -f "$t" ] || continue
  tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
  ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
  us() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
  per() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
  par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
  arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
  printf "%-6s %6s %7s %7s %6s %6s %6s %6s %6s %6s %6s %6s %s\n" $name "${tok:--}" "${ms:--}" "$(us step)" "$(per attention)" \
    "$(per merge)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "$(per head)" "$(per probe)" "${par:+$par,$arg}"
done | tee "$R/summary.txt"
tar czf "${OUT:-/tmp}/s16-wgpu2-call3.tgz" -C "$R" . && cp "$R/summary.txt" "${OUT:-/tmp}/s16-wgpu2-summary.txt"
el done
