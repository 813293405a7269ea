#!/bin/bash
# Session 22, branch s22-wgpu, call 2 (one H200 through Vulkan): the new default (8 rows a
# workgroup row on subgroups of 32, MOA_WGPU_SG_ROWS unset) against the earlier one
# (MOA_WGPU_SG_ROWS=16), one process a run, through the engine's default path (no
# --sg-variants): tokens/s and the per-kind profile; then the partial-last-trip
# subgroup test with the default.
#   END=55 bash .dev-s22-wgpu/call2.sh   (run tool timeout_s >= END + 12)
# Only on a machine already warm (this helper's cap left no fresh start): no parity (call
# 1 checked the same pipelines as its `-:-:0:8` variant), no test unless time is left.
# Runs (SmolLM2 shape, random weights, 16 x 4096, moa-50, 64 greedy tokens, --profile 5,
# MOA_WGPU_COOP_ATTN=0): new1 old1 new2 old2 [new3 old3 if time is left].
# PREDICTIONS (written before the call, 2026-12-02 ~19:09 UTC, from call 1's variants):
#   the load line names "8 rows a workgroup row" for new, "16" for old;
#   device step new 1.50-1.52 ms, old 1.57-1.59;
#   qkv 5.7-5.9 / 6.2-6.6, out 4.2-4.5 / 4.6-4.9, down 6.0-6.3 / 6.6-6.9 us;
#   tok/s new +3..+6% over old (call 1's main run, old default: 9 669).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s22wgpu2; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-55}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s22-wgpu-call2.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
[ -e /work/wt-s22-wgpu ] || ln -s "$ROOT" /work/wt-s22-wgpu
for b in model_gpu wpe; do gunzip -c "$D/$b.gz" > "/tmp/$b" && chmod +x "/tmp/$b" || { el "no $b.gz"; exit 1; }; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export MOA_WGPU_COOP_ATTN=0
el start
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
envof() { case $1 in new*) echo "MOA_WGPU_COOP_ATTN=0";; old*) echo "MOA_WGPU_SG_ROWS=16";; esac; }
step() { local name=$1 par=$2 cap=$3; left $(( cap + 2 )) || { el "skip $name"; return; }
  env $(envof $name) timeout $cap /tmp/wpe $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: " "$R/$name.txt" | cut -c1-200 | head -2; save; }
RUNS="new1:0:12 old1:0:12 new2:0:12 old2:0:12 new3:0:12 old3:0:12"
for r in $RUNS; do IFS=: read -r n p c <<< "$r"; step "$n" "$p" "$c"; done
grep -h -o -E "decode products: [^;]*" "$R/new1.txt" "$R/old1.txt" 2>/dev/null | cut -c1-200
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
if left 12; then T=$(( END - 3 - ( $(date +%s) - s ) ))
  ( cd "$ROOT" && timeout $T /tmp/model_gpu --test-threads 1 subgroup_products_with > "$R/tests.txt" 2>&1; echo "rc=$?" >> "$R/tests.txt" )
  el "tests $(grep -E '^test |^test result|rc=' "$R/tests.txt" | tr '\n' ' ' | cut -c1-250)"
else el "skip tests"; fi
el done; save
