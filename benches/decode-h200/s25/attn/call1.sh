#!/bin/bash
# Session 25, branch s25-attn, call 1 (one H200 through Vulkan).
#   END=200 bash .dev-s25-attn/call1.sh   (run tool timeout_s >= END + 15; carry filled by
#   benches/decode-h200/s25/attn/pack.sh with this branch's binaries)
# The engine's default is now the flat form merging its own segments (MOA_WGSL_FUSED_MERGE
# unset: on where the flat decode on subgroups runs). What bounds the loads-only twin
# (MOA_WGSL_SG_DECODE=read, 14.2 us a layer in session 24, against ~6.3 for a copy of the
# same 25.9 MB + a ~2.2 dispatch floor)?
# 1. regs (SmolLM2 moa-50 layer 6, subgroup 32): the fused default, words (K and V read as
#    16-byte vec4<u32> words and unpacked to f32: MOA_WGSL_SG_FLAT_WORDS=1), the twin,
#    the twin with words. 2. wgpu_decode_bench check (fixture-gqa, fixture-mha; f32, f16)
#    with words and the fused merge. 3. the engine's step (SmolLM2 shape, random weights,
#    16 x 4096, moa-50, 64 greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0), one process a
#    run: full form def / W (words) A B B A, the twin rd / rw (words) A B B A, then the
#    twin told 528 resident (4 workgroups of 256 an SM, which its 55 registers allow: half
#    the chunk, 2x the bytes in flight an SM), the twin early (first K before the row
#    position), the separate merge (MOA_WGSL_FUSED_MERGE=0), and a third def / W pair.
# MODEL (Little's law; the work list from plans/smollm2-135m-moa-50.toml at N = 4160, 264
#   resident): 208-256 items a layer, chunks 256-704 slots, a wave's bytes 0.72-0.90 of its
#   264 x chunk capacity (short last chunks); the twin holds 8 x 16 B = 128 B a lane in
#   flight, 64 KB an SM (2 workgroups of 256), the full form 64 B a lane (K or V), 32 KB;
#   the copy's rate x a loaded latency of ~0.8 us needs ~25 KB an SM. So on paper the twin
#   is not short of bytes in flight: bytes / (rate x 0.83) + floor + start = 7.6 + 2.2 +
#   ~1 = ~10.8 us, 3.4 under what it took. Suspects: the load width (mat2x4<f16> is two
#   8-byte columns: if the driver emits two 8-byte loads a lane, twice the L1/L2 requests),
#   the wave's tail, the start chain.
# PREDICTIONS (written before the call):
#   regs: default (fused) 121; W 112-121; twin 55; twin with words 50-55.
#   check with words (and fused): pass, errors as the default's (1.2e-7-1.8e-7 / 2.4e-4-2.7e-4).
#   def: 153 dispatches, attention 21.6-22.8 us a layer (no merge row), step 1.470-1.500 ms,
#     parity 0.0517, 3/3.
#   W: if the driver splits mat2x4<f16> into two 8-byte loads, -1..-3 us a layer; if it
#     already loads 16 bytes, a tie (+-0.3). Expected 20.5-22.5 (-1.5..+0.5 against def).
#     Parity 0.0517, 3/3 (the same f32 products).
#   rd: 14.0-14.4; rw: 12.5-14.4 (the same question as W, without the math around it).
#   r528 (twin, 528 resident): 12.0-13.0 (s20's twin at 396: 12.68).
#   re (twin, early): 13.8-14.4 (s20's stream: a dependent chain first costs a read ~0).
#   sep (separate merge): attention 18.4-19.0 + merge 3.5-3.8, step 1.485-1.510 ms.
# CALL 2 (warm, written after call 1, before call 2): NOREGS=1 CALL=call2 END=72
#   RUNS="def4:0:13 W4:0:13 W5:0:12 def5:0:12 def6:0:12 W6:0:12 v1056a:0:12": three more
#   def / W pairs (W: attention -1.0..-1.5 us a layer, step -35..-80 us, as W2 / W3), and
#   v1056 = the twin with words (32 registers: 8 workgroups of 256 an SM) told 1056
#   resident: 10.5-11.5 (r528 took 11.65; more warps an SM, diminishing).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s25attn1; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-200}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s25-attn-${CALL:-call1}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "/tmp/$b" && chmod +x "/tmp/$b" || { el "no $b.gz"; exit 1; }; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
el start
P=plans/smollm2-135m-moa-50.toml
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late"
if [ -z "$NOREGS" ]; then
for v in "def:MOA_WGSL_FUSED_MERGE=1" "W:MOA_WGSL_FUSED_MERGE=1 MOA_WGSL_SG_FLAT_WORDS=1" \
    "rd:MOA_WGSL_SG_DECODE=read" "rw:MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_FLAT_WORDS=1"; do
  n=${v%%:*}; e=${v#*:}
  r=$(env $F $e timeout 20 /tmp/wdb regs $P - 6 2>&1 | grep -m1 -E "^regs layer [0-9]|error")
  echo "$n $r" >> "$R/regs.txt"; el "regs $n $(echo "$r" | grep -o -E "Register_Count=[0-9]+")"; done
env $F MOA_WGSL_FUSED_MERGE=1 MOA_WGSL_SG_FLAT_WORDS=1 timeout 40 /tmp/wdb check plans/fixture-gqa.toml plans/fixture-mha.toml > "$R/check-words.txt" 2>&1
el "check words rc=$?"; grep -E "max .error|check|FAIL" "$R/check-words.txt" | cut -c1-110 | head -6; save
fi
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
envof() { case $1 in def*) echo "MOA_WGPU_COOP_ATTN=0";; W*) echo "MOA_WGSL_SG_FLAT_WORDS=1";;
  rw*) echo "MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_FLAT_WORDS=1";; rd*) echo "MOA_WGSL_SG_DECODE=read";;
  r528*) echo "MOA_WGSL_SG_DECODE=read MOA_WGPU_DECODE_RESIDENT=528";;
  v1056*) echo "MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_FLAT_WORDS=1 MOA_WGPU_DECODE_RESIDENT=1056";;
  re*) echo "MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_FLAT=1";; sep*) echo "MOA_WGSL_FUSED_MERGE=0";; esac; }
step() { local name=$1 par=$2 cap=$3; left $(( cap + 2 )) || { el "skip $name"; return; }
  env $(envof $name) timeout $cap /tmp/wpe $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: " "$R/$name.txt" | cut -c1-200 | head -2; save; }
RUNS=${RUNS:-"def1:24:30 W1:24:30 W2:0:16 def2:0:16 rd1:0:16 rw1:0:16 rw2:0:16 rd2:0:16 r528a:0:16 re1:0:16 sep1:0:16 def3:0:16 W3:0:16"}
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
