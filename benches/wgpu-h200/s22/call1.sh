#!/bin/bash
# Session 22, branch s22-wgpu, call 1 (one H200 through Vulkan): the subgroup decode
# products with fewer rows a subgroup (MOA_WGPU_SG_ROWS, matvec_sg.wgsl's ROW_GROUPS) and
# the other rows' subgroups in the same workgroup (MOA_WGPU_SG_ROW_SPLIT, ROW_SPLIT).
#   END=175 bash .dev-s22-wgpu/call1.sh   (run tool timeout_s >= END + 15)
# Why: session 21's clean DIAG rows put 1.8-2.7 us of each product (qkv, out, down) in
# "x loads + multiply-adds" with a K loop of 1-3 trips; a lane holds 80 sums and loads 16
# x 4-vectors (64 registers) a weight vector, more than fit beside its sums within the
# driver's 120-151 registers, so the x loads go out in dependent batches. With 8 rows a
# subgroup a lane holds 40 sums and 8 x 4-vectors: one batch.
# 1. regs (`wdb regs-products`): KSPLIT:GROUPS[:ROWS[:RSPLIT]] 8:1 8:1:8 8:1:4 4:1 4:1:8
#    4:1:8:2 (three inputs each: out f16 x, down f32 x, RMSNorm form), ~3 s.
# 2. One engine process (SmolLM2 shape, random weights, 16 x 4096, moa-50, 64 greedy
#    tokens, --profile 5, MOA_WGPU_COOP_ATTN=0), --sg-variants over the same caches, parity
#    24 of each real variant first, every profile after an untimed one:
#      def    -:-:0        (main: 16 rows a subgroup; qkv KSPLIT 4, out/down 8; 1 group)
#      r8     -:-:0:8      (8 rows a subgroup, grid y 2: qkv 480 wg x 128, out/down 288 x 256)
#      r8s2k4 4:-:0:8:2    (KSPLIT 4 everywhere, 8 rows a subgroup, 2 row blocks a workgroup:
#                           the grid of KSPLIT 4 (qkv 240, out/down 144 wg of 256))
#      r8k4   4:-:0:8      (KSPLIT 4, 8 rows a subgroup, grid y 2: 480 / 288 wg of 128)
#    order: def r8 r8s2k4 r8k4 | def r8 r8s2k4 r8k4 | def r8, then r8's DIAG 1 (no K loop)
#    and DIAG 4 (weights only). (4 rows a subgroup, -:-:0:4, was cut when a failed start
#    left less device time: predicted >= r8's everywhere, 4x the weight loads and 576
#    workgroups of 256 for out/down, two waves.)
# 3. tests/model_gpu.rs: subgroup_products_with_a_partial_last_trip (the new ROW_GROUPS 2/1
#    butterflies and ROW_SPLIT on 32 lanes; lavapipe has 8), then
#    subgroup_products_match_the_cpu_reference if time is left (passed on lavapipe).
# PREDICTIONS (written before the call, 2026-12-02 ~18:55 UTC; main today: qkv 6.5-6.6,
#   out 4.6-4.8, down 6.6-6.8 us a dispatch, device step 1.56-1.58 ms):
#   regs: 8:1 out 120, down 128, norm 151 (s17); 8:1:8 70-95 / 75-100 / 95-115; 8:1:4
#     50-75; 4:1:8:2 the same as 8:1:8 (the row split adds no live state).
#   parity: every variant max |logit err| 0.045-0.055, argmax 3/3 (sums reordered only).
#   r8: qkv 5.4-6.0, out 4.0-4.4, down 5.6-6.2; step -40..-90 us, if out/down's 288
#     workgroups of 256 stay one wave (<= 80 registers: 3 an SM); at 2 an SM (264 slots)
#     out/down +0.5..+1.5 over that.
#   r8s2k4: qkv 5.5-6.2 (half the x loads a lane, the same 240 workgroups), out 4.3-5.0
#     (part 0 takes two trips), down 6.2-7.2 (three trips instead of two).
#   r8k4: qkv as r8; out 4.2-4.8, down 6.0-7.0 (the longer K loop).
#   r8 DIAG 1 (no K loop) 2.6-3.2 (the reduction one step shorter); DIAG 4 3.0-4.5.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s22wgpu; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-175}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s22-wgpu-call1.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
# The test binary was built in this branch's worktree: its CARGO_MANIFEST_DIR.
[ -e /work/wt-s22-wgpu ] || ln -s "$ROOT" /work/wt-s22-wgpu
for b in model_gpu wpe wdb; do gunzip -c "$D/$b.gz" > "/tmp/$b" && chmod +x "/tmp/$b" || { el "no $b.gz"; exit 1; }; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
el start
# 1. Registers.
timeout 20 /tmp/wdb regs-products 8:1,8:1:8,8:1:4,4:1,4:1:8,4:1:8:2 > "$R/regs.txt" 2>&1; el "regs rc=$?"
grep -E "^regs matvec" "$R/regs.txt" | sed -E 's/^regs matvec_sg //; s/: threads ([0-9]+).*Register_Count=([0-9]+).*/: threads \1, regs \2/' | cut -c1-120
grep -m2 -i -E "error|usage" "$R/regs.txt"; save
# 2. The variants, one process.
export MOA_WGPU_COOP_ATTN=0
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
V="-:-:0;-:-:0:8;4:-:0:8:2;4:-:0:8;-:-:0;-:-:0:8;4:-:0:8:2;4:-:0:8;-:-:0;-:-:0:8;-:-:1:8;-:-:4:8"
T=$(( END - 30 - ( $(date +%s) - s ) ))
timeout $T /tmp/wpe $A --parity 24 --sg-variants "$V" > "$R/variants.txt" 2>&1; el "variants rc=$? (cap $T s)"; save
grep -h -E "max .logit err|panicked|Error" "$R/variants.txt" | sed -E 's/against the CPU reference, //' | cut -c1-200
# Table: one row a profile (us a dispatch).
awk '/^variant .*decode step per dispatch/ { n++; name=$0; sub(/^variant /,"",name); sub(/ decode step.*/,"",name) }
  /^decode step per dispatch/ { n++; name="main run (default)" }
  /^ *(qkv|attention|merge|out|gate_up|down|head|step|probe):/ { k=$1; sub(/:/,"",k); for (i=1;i<=NF;i++) if ($i ~ /^\(?$/ && $(i+1) ~ /us\/dispatch/) {}; 
    match($0, /\( *[0-9.]+ us\/dispatch/); v=substr($0, RSTART+1, RLENGTH-13); gsub(/ /,"",v);
    if (k=="step") { match($0, /[0-9.]+ us device/); v=substr($0, RSTART, RLENGTH-10) }
    val[n,k]=v; nm[n]=name }
  END { printf "%-44s %8s %6s %5s %5s %5s %5s %5s %5s\n","variant","step","attn","merge","qkv","out","gu","down","probe";
    for (j=1;j<=n;j++) printf "%-44s %8s %6s %5s %5s %5s %5s %5s %5s\n", nm[j], val[j,"step"], val[j,"attention"], val[j,"merge"], val[j,"qkv"], val[j,"out"], val[j,"gate_up"], val[j,"down"], val[j,"probe"] }' \
  "$R/variants.txt" | tee "$R/summary.txt"; save
# 3. Tests on the H200's Vulkan.
for t in subgroup_products_with subgroup_products_match; do
  if left 20; then T=$(( END - 6 - ( $(date +%s) - s ) ))
    ( cd "$ROOT" && timeout $T /tmp/model_gpu --test-threads 1 $t > "$R/tests-$t.txt" 2>&1; echo "rc=$?" >> "$R/tests-$t.txt" )
    el "tests $t: $(grep -E '^test |^test result|rc=' "$R/tests-$t.txt" | tr '\n' ' ' | cut -c1-300)"; save
  else el "skip tests $t"; fi
done
el done; save
