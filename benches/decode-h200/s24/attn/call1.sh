#!/bin/bash
# Session 24, branch s24-attn, call 1 (one H200 through Vulkan).
#   END=175 bash .dev-s24-attn/call1.sh   (run tool timeout_s >= END + 15; carry filled by
#   benches/decode-h200/s24/attn/pack.sh with this branch's binaries)
# Part A = session 23's call3.sh (never run): the flat decode merging its own segments
#   (MOA_WGSL_FUSED_MERGE=1, decode_fused_merge.wgsl.j2) against the default (separate merge
#   dispatch). 1. regs (SmolLM2 moa-50 layer 6, subgroup 32) default, fused, and the
#   no-combine diagnostic. 2. wgpu_decode_bench check (fixture-gqa, fixture-mha; f32, f16)
#   with the fused merge (three steps over one scratch included). 3. the engine's step
#   (SmolLM2 shape, random weights, 16 x 4096, moa-50, 64 greedy tokens, --profile 5,
#   MOA_WGPU_COOP_ATTN=0), one process a run, A B B A A B: def1 F1 F2 def2 def3 F3 (parity
#   24 in def1 and F1).
# Part B = what each part of a step's item costs (issue 8 item 3, session 23's open
#   question), the same engine step with timing diagnostics of the flat form (wrong
#   results, parity 0; the same work list, 264 resident, in every run): rd = the
#   loads-only twin (MOA_WGSL_SG_DECODE=read), p1 = + Q.K partial scores, p2 = + butterfly
#   and masks, p3 = + online softmax (V folded, no P.V), the default = + P.V; nc = the
#   default without the subgroups' combine (workgroup memory, barrier, combine loop; each
#   subgroup stores its own partial), rdnc = the twin without it; def4 last (drift).
# PREDICTIONS (written before the call):
#   regs: default 119; fused 119-128; no-combine 110-119.
#   check: pass, errors as the default's (1.2e-7-1.8e-7 / 2.4e-4-2.7e-4).
#   A: merge row gone (-3.5..-3.9 us a layer), dispatches 183 -> 153; attention 18.4-18.9
#     -> 20.0-22.5 (the segment's last item's tail: counter round trip, ~5.5 partials x 3
#     heads x 66 words, merge math, O and EMPTY stores); net -2.0..+0.5 us a layer, the
#     step -60..+15 us; parity 0.0517, 3/3. (The scalar form's fused merge lost 2.6 net in
#     session 13: a loss is possible.)
#   B (us a layer, attention row): rd 12.5-13.5 (s20: 12.68 at 396 resident); p1 14-16;
#     p2 15-17; p3 16-18; default 18.4-18.9; nc 17.5-18.5 (the combine ~0.5-1 us);
#     rdnc 11.8-13.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s24attn1; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-175}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s24-attn-${CALL:-call1}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "/tmp/$b" && chmod +x "/tmp/$b" || { el "no $b.gz"; exit 1; }; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
el start
P=plans/smollm2-135m-moa-50.toml
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late"
if [ -z "$NOREGS" ]; then
for v in "def:" "fused:MOA_WGSL_FUSED_MERGE=1" "nc:MOA_WGSL_SG_NO_COMBINE=1"; do
  n=${v%%:*}; e=${v#*:}
  r=$(env $F $e timeout 20 /tmp/wdb regs $P - 6 2>&1 | grep -m1 -E "^regs layer [0-9]|error")
  echo "$n $r" >> "$R/regs.txt"; el "regs $n $(echo "$r" | grep -o -E "Register_Count=[0-9]+")"; done
env $F MOA_WGSL_FUSED_MERGE=1 timeout 40 /tmp/wdb check plans/fixture-gqa.toml plans/fixture-mha.toml > "$R/check-fused.txt" 2>&1
el "check fused rc=$?"; grep -E "max .error|check|FAIL" "$R/check-fused.txt" | cut -c1-110 | head -6; save
fi
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
envof() { case $1 in def*) echo "MOA_WGPU_COOP_ATTN=0";; F*) echo "MOA_WGSL_FUSED_MERGE=1";;
  rdnc*) echo "MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_NO_COMBINE=1";; rd*) echo "MOA_WGSL_SG_DECODE=read";;
  p1*) echo "MOA_WGSL_SG_PIECE=1";; p2*) echo "MOA_WGSL_SG_PIECE=2";; p3*) echo "MOA_WGSL_SG_PIECE=3";;
  nc*) echo "MOA_WGSL_SG_NO_COMBINE=1";; esac; }
step() { local name=$1 par=$2 cap=$3; left $(( cap + 2 )) || { el "skip $name"; return; }
  env $(envof $name) timeout $cap /tmp/wpe $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: " "$R/$name.txt" | cut -c1-200 | head -2; save; }
RUNS=${RUNS:-"def1:24:30 F1:24:30 F2:0:17 def2:0:17 def3:0:17 F3:0:17 rd1:0:17 p3a:0:17 nc1:0:17 p1a:0:17 p2a:0:17 rdnc1:0:17 def4:0:17"}
for r in $RUNS; do IFS=: read -r n p c <<< "$r"; step "$n" "$p" "$c"; done
summary() { printf "%-5s %6s %7s %5s %7s %6s %6s %5s %5s %5s %5s %s\n" run tok/s ms/st disp dev_us attn merge qkv out gu down parity
  for r in $RUNS; do IFS=: read -r name _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    di=$(grep -o -E "[0-9]+ dispatches/step" "$t" | head -1 | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-5s %6s %7s %5s %7s %6s %6s %5s %5s %5s %5s %s\n" $name "${tok:--}" "${ms:--}" "${di:--}" "$(us step)" "$(per attention)" "$(per merge)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "${par:+$par,$arg}"
  done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
