#!/bin/bash
# Session 21, branch s21-products (issue 12 item 3), for the lead's closing call (one H200
# through Vulkan): the decode products with x staged in workgroup memory
# (MOA_WGPU_SG_XSTAGE, matvec_sg.wgsl's XSTAGE) against the default, which reads x from
# storage in the K loop.
#   END=88 bash benches/wgpu-h200/s21/products.sh   (run tool timeout_s >= END + 10)
# The caller has unpacked the release binaries of merged main to /tmp/wpe
# (wgpu_products_engine) and /tmp/wdb (wgpu_decode_bench) and installed the Vulkan loader
# (benches/lead-h200/s19/next-checks.sh's way). Output: $OUT/s21-products.tgz (saved
# after every step: a timeout still returns what ran) and a summary table on stdout.
# 1. regs: `wdb regs-products` of the default (KSPLIT 8 and 4, one group) and the staged
#    forms at the chunks the engine picks on a 48 KB adapter (f16: 256 4-vectors at
#    KSPLIT 8 and 4; f32: 160 at KSPLIT 8, 128 at 4; 4:2 f16 = two column groups sharing
#    one staged x), 2-3 s.
# 2. The engine's step (SmolLM2 shape, random weights, 16 x 4096, moa-50, 64 greedy
#    tokens, --profile 5, MOA_WGPU_COOP_ATTN=0), one process a run, A B | B A | A B with
#    A = the default, B = MOA_WGPU_SG_XSTAGE=f16; parity 24 in the first of each (~20 s
#    and ~12 s), the rest ~8 s each.
# 3. If time is left, one process with --sg-variants over the same caches (each profile
#    after an untimed one; no parity): default, f32 staging, f16 staging with two column
#    groups a workgroup (KSPLIT 4 for out/down: 72 workgroups, x shared by 2 groups),
#    f16, default.
# What the staging removes: with one column group a workgroup (the default on the H200)
# every x element is already loaded once a workgroup, so it saves no bytes; it turns a
# lane's 16 x loads a weight vector, issued in a few dependent batches under ~120-150
# registers, into one batch of independent loads (the staging loop), a barrier, and
# workgroup-memory loads in the K loop. So it tests whether x's round trips to L2, not
# its bytes or load count, are the 1.8-2.7 us of "x loads + multiply-adds" (RESULTS "wgpu
# engine, session 21").
# PREDICTIONS (written before the call, 2026-12-02 ~16:50 UTC):
#   regs: default out 120, down 128, norm 151 (s17); staged f16/f32 100-135 (no x held
#     across the K loop's loads; the staging loop's 16 loads an invocation are
#     independent), 4:2 f16 the same as 4:1 f16.
#   parity: B max |logit err| 0.04-0.06, argmax 3/3 (f16 x: s18's X16 held 0.047-0.058).
#   engine per dispatch (A: qkv 6.1-6.6, out 4.6-4.8, down 6.5-6.8 us): B qkv 5.8-6.3,
#     out 4.0-4.5, down 5.9-6.5; step -30..-60 us (1.51-1.54 ms device against
#     1.56-1.58). If the x loads' cost is their issue (L1/LSU throughput) rather than
#     their round trips, B is +0..+0.3 us a product instead (the extra stores and
#     barrier): that outcome would delete the knob.
#   variants: f32 = f16 within 0.2 us for qkv/out, down +0.2..+0.6 (three chunks of 160
#     against two of 256); two groups f16: out 4.8-5.4, down 6.5-7.3 (72 workgroups on
#     132 SMs outweigh the halved x loads, as in s17: 5.55 against 4.78 unstaged).
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/s21products; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-88}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s21-products.tgz" -C "$R" . 2>/dev/null; }
WPE=${WPE:-/tmp/wpe}; WDB=${WDB:-/tmp/wdb}
for b in "$WPE" "$WDB"; do [ -x "$b" ] || { el "no $b"; exit 1; }; done
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
[ -d "${XDG_RUNTIME_DIR:-/nonexistent}" ] || export XDG_RUNTIME_DIR=$(mktemp -d)
el "start ($D)"
# 1. Registers of the products (the driver's statistics).
timeout 15 "$WDB" regs-products 8:1,8:1:f16:256,8:1:f32:160,4:1,4:1:f16:256,4:1:f32:128,4:2:f16:256 \
  > "$R/regs.txt" 2>&1; el "regs rc=$?"
grep -E "^regs matvec" "$R/regs.txt" | sed -E 's/^regs matvec_sg //; s/: threads ([0-9]+).*Register_Count=([0-9]+).*Shared_Memory_Size=([0-9]+).*/: threads \1, regs \2, shared \3/' \
  | cut -c1-150; grep -m2 -i -E "error|usage" "$R/regs.txt"; save
# 2. The engine's step, one process a run.
export MOA_WGPU_COOP_ATTN=0
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
envof() { case $1 in def*) echo "MOA_WGPU_COOP_ATTN=0";; stg*) echo "MOA_WGPU_SG_XSTAGE=f16";; esac; }
step() { local name=$1 par=$2 cap=$3; left $(( cap + 2 )) || { el "skip $name"; return; }
  env $(envof $name) timeout $cap "$WPE" $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: " "$R/$name.txt" | cut -c1-200 | head -2; save; }
RUNS="def1:24:26 stg1:24:20 stg2:0:12 def2:0:12 def3:0:12 stg3:0:12"
for r in $RUNS; do IFS=: read -r n p c <<< "$r"; step "$n" "$p" "$c"; done
grep -h -o -E "decode products: [^;]*" "$R/def1.txt" "$R/stg1.txt" 2>/dev/null | cut -c1-220
summary() { printf "%-5s %6s %7s %7s %6s %6s %5s %5s %5s %5s %s\n" run tok/s ms/st dev_us attn merge qkv out gu down parity
  for r in $RUNS; do IFS=: read -r name _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-5s %6s %7s %7s %6s %6s %5s %5s %5s %5s %s\n" $name "${tok:--}" "${ms:--}" "$(us step)" "$(per attention)" "$(per merge)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "${par:+$par,$arg}"
  done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; save
# 3. Other staged forms over the same caches, if time is left (~15 s).
if left 16; then T=$(( END - $(date +%s) + s - 1 ))
  timeout $T "$WPE" $A --parity 0 --sg-variants "-:-:0:0;-:-:0:f32;-:2:0:f16;-:-:0:f16;-:-:0:0" > "$R/variants.txt" 2>&1
  el "variants rc=$?"
  grep -E "^variant .*(step per|: subgroup)|^  *(attention|qkv|out|down|step):" "$R/variants.txt" \
    | sed -E 's/ decode step per dispatch kind.*//; s/dispatches, +//; s/ us host finish//' | cut -c1-230 | tail -30
else el "skip variants"; fi
el done; save
