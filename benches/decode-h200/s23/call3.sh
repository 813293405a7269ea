#!/bin/bash
# Session 23, branch s23-attn, call 3 (ready for the lead; not run by s23-attn, whose device
# time was spent): the flat decode merging its own segments (MOA_WGSL_FUSED_MERGE=1: every
# item counts itself in on its segment's counter after its partial's atomic stores, the
# segment's last item merges into O; decode_fused_merge.wgsl.j2, shared with the scalar
# decode's fused merge) against the default (separate merge dispatch), one H200 via Vulkan.
#   END=110 bash .dev-s23-attn/call3.sh   (run tool timeout_s >= END + 15; carry filled by
#   benches/decode-h200/s23/pack.sh with this branch's binaries)
# 1. regs (SmolLM2 moa-50 layer 6, subgroup 32) of the flat form, default and fused.
# 2. wgpu_decode_bench check (fixture-gqa, fixture-mha; f32 and f16) with the fused merge:
#    chunks as the host picks them, of 1 and 3 tiles, whole segments, and three steps over
#    one scratch (the counters re-armed, the partials emptied).
# 3. The engine's step (SmolLM2 shape, random weights, 16 x 4096, moa-50, 64 greedy tokens,
#    --profile 5, MOA_WGPU_COOP_ATTN=0), one process a run, A B B A A B: def1 F1 F2 def2
#    def3 F3 (parity 24 in def1 and F1).
# PREDICTIONS (written before any call of this form):
#   regs: default 119; fused 119-128 (the merge runs after the loop, its live values apart).
#   check: pass, errors as the default's (1.2e-7 / 2.4e-4-2.7e-4).
#   engine: the merge row disappears (3.5-3.9 us a layer); the attention row grows by the
#     tail the segment's last item adds (its counter's round trip, one round trip of
#     ~5.5 partials x 3 heads x 66 words, the merge math, O and the EMPTY stores): 18.4-18.9
#     -> 20.0-22.5. Sum against 22.0-22.5: -2.0..+0.5 us a layer, the step -60..+15 us; the
#     scalar decode's fused merge lost 2.6 us a layer net in session 13, so a loss is
#     possible. Parity 0.0517 (the same sums in the same order as the merge kernel's), 3/3.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s23attn3; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-110}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s23-attn-call3.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "/tmp/$b" && chmod +x "/tmp/$b" || { el "no $b.gz"; exit 1; }; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
el start
P=plans/smollm2-135m-moa-50.toml
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late"
for f in 0 1; do
  r=$(env $F MOA_WGSL_FUSED_MERGE=$f timeout 20 /tmp/wdb regs $P - 6 2>&1 | grep -m1 -E "^regs layer [0-9]|error")
  echo "fused $f $r" >> "$R/regs.txt"; el "regs fused $f $(echo "$r" | grep -o -E "Register_Count=[0-9]+")"; done
env $F MOA_WGSL_FUSED_MERGE=1 timeout 40 /tmp/wdb check plans/fixture-gqa.toml plans/fixture-mha.toml > "$R/check-fused.txt" 2>&1
el "check fused rc=$?"; grep -E "max .error|check|FAIL" "$R/check-fused.txt" | cut -c1-110 | head -6; save
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
envof() { case $1 in def*) echo "MOA_WGPU_COOP_ATTN=0";; F*) echo "MOA_WGSL_FUSED_MERGE=1";; esac; }
step() { local name=$1 par=$2 cap=$3; left $(( cap + 2 )) || { el "skip $name"; return; }
  env $(envof $name) timeout $cap /tmp/wpe $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: " "$R/$name.txt" | cut -c1-200 | head -2; save; }
RUNS=${RUNS:-"def1:24:30 F1:24:30 F2:0:17 def2:0:17 def3:0:17 F3:0:17"}
for r in $RUNS; do IFS=: read -r n p c <<< "$r"; step "$n" "$p" "$c"; done
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
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
