#!/bin/bash
# Session 26, branch s26-attn, call 2 (NOT RUN in session 26: this helper's device time was
# spent; ready for the lead or session 27). One H200 through Vulkan, ~95 s of command:
#   END=100 bash .dev-s26-attn/call2.sh   (timeout_s 115; carry filled by pack.sh with the
#   binaries of b76ba9e or later: class maxima are the engine's default there)
# Questions left by call 1 (RESULTS "WGSL decode, session 26"):
# 1. What sets the 93 registers of h16-reload + class maxima (session 21's h16-reload read 80
#    with the separate merge)? regs (layer 6) of h16-reload with and without class maxima,
#    fused and not (h16 forms ignore the 16-byte words).
# 2. Did 4 subgroups + class maxima told 660 resident lose to a second wave or to 2.5x the
#    items? The same kernels told 528 (4 of 128 an SM, the shape's old constant) and 660.
# PREDICTIONS (written before any call):
#   regs: h16-reload unfused 80 (s21), + class maxima unfused 80-84; fused 88-93: if so the
#     fused merge's tail holds the floor (a merge batch of 4 instead of 8 the next lever).
#   def (class maxima, the default): attention 20.1-20.4 us a layer, step 1.420-1.430 ms.
#   S4 told 528: 20.3-21.0 (s21: 4 subgroups at 528 lost 0.5 to 8 at 264); told 660: 25.0-25.5
#     (as call 1). If 528 is near def and 660 far, the 5th workgroup an SM is not resident
#     (a second wave); if both far, the items' count.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s26attn2}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-100}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s26-attn-call2.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "$B/$b" && chmod +x "$B/$b" || { el "no $b.gz"; exit 1; }; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start
P=plans/smollm2-135m-moa-50.toml
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late MOA_WGSL_SG_FLAT_WORDS=1"
for v in "HR-u:MOA_WGSL_FUSED_MERGE=0 MOA_WGSL_SG_FLAT_QK=h16-reload" \
    "HRC-u:MOA_WGSL_FUSED_MERGE=0 MOA_WGSL_SG_FLAT_QK=h16-reload MOA_WGSL_SG_FLAT_CMAX=1" \
    "HR-f:MOA_WGSL_FUSED_MERGE=1 MOA_WGSL_SG_FLAT_QK=h16-reload" \
    "HRC-f:MOA_WGSL_FUSED_MERGE=1 MOA_WGSL_SG_FLAT_QK=h16-reload MOA_WGSL_SG_FLAT_CMAX=1" \
    "C-u:MOA_WGSL_FUSED_MERGE=0 MOA_WGSL_SG_FLAT_CMAX=1" "C-f:MOA_WGSL_FUSED_MERGE=1 MOA_WGSL_SG_FLAT_CMAX=1"; do
  n=${v%%:*}; e=${v#*:}
  r=$(env $F $e timeout 20 $B/wdb regs $P - 6 2>&1 | grep -m1 -E "^regs layer [0-9]|error")
  echo "$n $r" >> "$R/regs.txt"; el "regs $n $(echo "$r" | grep -o -E "Register_Count=[0-9]+")"; done; save
export MOA_WGPU_COOP_ATTN=0
A=${A:-"--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"}
envof() { case $1 in def*) echo "MOA_WGPU_COOP_ATTN=0";;
  a528*) echo "MOA_WGSL_SG_FLAT_SUBGROUPS=4 MOA_WGPU_DECODE_RESIDENT=528";;
  b660*) echo "MOA_WGSL_SG_FLAT_SUBGROUPS=4 MOA_WGPU_DECODE_RESIDENT=660";; esac; }
step() { local name=$1 par=$2 cap=$3; left $(( cap + 2 )) || { el "skip $name"; return; }
  env $(envof $name) timeout $cap $B/wpe $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"; save; }
RUNS=${RUNS:-"def1:0:30 a528a:0:22 b660a:0:22 b660b:0:14 a528b:0:14 def2:0:14 def3:0:14"}
for r in $RUNS; do IFS=: read -r n p c <<< "$r"; step "$n" "$p" "$c"; done
for r in $RUNS; do n=${r%%:*}; t=$R/$n.txt; [ -f "$t" ] || continue
  echo "$n $(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t") $(grep -m1 -E "^ *attention: " "$t" | grep -o -E "[0-9.]+ us/dispatch")"; done | tee "$R/summary.txt"
el done; save
