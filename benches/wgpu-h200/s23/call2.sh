#!/bin/bash
# (Ran with the binaries of this branch at 489cf9c, where MOA_WGPU_COOP_GATE_UP_KPARTS and
# regs-coop's KPARTS list existed; both went after this call: options::REMOVED.)
# Session 23, s23-gateup, call 2 (one H200 through Vulkan): why more K parts lost in
# call 1. The driver's statistics of the matrix-unit gate/up product at KPARTS 4 (the
# default), 6, 9 and 12 (`wgpu_decode_bench regs-coop`, VK_KHR_pipeline_executable_
# properties), then d k6 k6 d (K over 6 subgroups: the default's x staging, TPR 8, with
# 6 warps of 12 B fragments; k6a with --parity 24), one process a run.
#   END=70 bash .dev-s23-gateup/call2.sh   (run tool timeout_s ~90; carry
#   [".dev-s23-gateup"], filled by pack.sh plus wdb.gz = the release wgpu_decode_bench)
# PREDICTIONS (before the call): registers KPARTS 4 160-200 (18 B fragments and 18 x
#   4-vectors a lane live together), 12 90-120; no spills in any (1 workgroup an SM:
#   up to 255 registers at 128 invocations, 168 at 384). If k9/k12 show spills or
#   several times the instructions, that is call 1's loss; if not, the loss is in the
#   warps' count (barriers, tile stores, the epilogue's 12 parts).
#   k6: gate/up 8.6-9.4 us (default 7.5-7.9), parity ~0.05, argmax 3/3.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s23gu2; rm -rf "$R"; mkdir -p "$R"
END=${END:-70}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s23-gateup-call2.tgz" -C "$R" .; }
left() { [ $(( $(date +%s) - s )) -lt "$END" ]; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
gunzip -c "$D/wdb.gz" > /tmp/wdb && chmod +x /tmp/wdb
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export MOA_WGPU_COOP_ATTN=0
el start
timeout 40 /tmp/wdb regs-coop 4,6,9,12 > "$R/regs.txt" 2>&1; el "regs rc=$?"; save
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
for r in d1:4:0:20 k6a:6:24:25 k6b:6:0:15 d2:4:0:15; do
  IFS=: read -r n kp par cap <<< "$r"
  left || { el "$n skipped (END)"; continue; }
  MOA_WGPU_COOP_GATE_UP_KPARTS=$kp timeout "$cap" /tmp/wpe $A --parity "$par" > "$R/$n.txt" 2>&1; el "$n rc=$?"; save
done
for n in d1 k6a k6b d2; do t=$R/$n.txt
  [ -f "$t" ] || continue
  tok=$(grep -o -E "= [0-9]+ tok/s" "$t" | tail -1)
  us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | head -1; }
  per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
  echo "$n $tok step=$(us step) attn=$(per attention) merge=$(per merge) qkv=$(per qkv) out=$(per out) gu=$(per gate_up) down=$(per down) probe=$(per probe) $(grep -o -E 'max .logit err. [0-9.]+|argmax equal [0-9/]+' "$t" | tr '\n' ' ')"
done | tee "$R/summary.txt"
grep -h -o -E "decode products: [^;]*;[^;]*" "$R/k6a.txt" | head -1 | tee -a "$R/summary.txt"
cat "$R/regs.txt"
save
