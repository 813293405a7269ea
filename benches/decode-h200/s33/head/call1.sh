#!/bin/bash
# Session 33, branch s33-head, call 1: the decode LM head (coop_head.wgsl) at the memory limit.
#   END=175 bash .dev-s33-head/call1.sh   (run tool timeout_s 200; carry .dev-s33-head, filled by
#   BIN=/tmp/s33-head-bin bash benches/decode-h200/s33/head/pack.sh)
# SmolLM2 shape, random weights, 16 rows x 4096, 256 new tokens, moa-50, MOA_WGPU_COOP_ATTN=0.
# A = main's head (naga's runtime checks on, one stage of weights ahead);
# U = MOA_WGPU_COOP_HEAD_UNCHECKED=1 (the same kernel without naga's index clamps and loop
#     counters; the engine's other shaders dropped them in session 16, the decode matrix-unit
#     kernels never did);
# W = U + MOA_WGPU_COOP_HEAD_AHEAD=2 (two stages of weights in flight in two register sets:
#     session 13's DEEP, which lost with the checks and scalar stores, 68.8-74.4 vs 54.5 us);
# D = U + MOA_WGPU_COOP_HEAD_DIAG=1 (no weights: launch, x staged, barriers, epilogues; wrong
#     results, no start-up check): the fixed part of the head;
# B = U + MOA_WGPU_COOP_HEAD_BLOCKS=3 (256 workgroups of 3 blocks).
# First: `wdb regs-head 576` (the driver's registers / shared memory / spills of each form).
# MODEL (written before the call):
#  Today (s32-dec A1, s32-fuse call 2 A1): head 44.2-44.3 us, argmax 4.4-5.3, step 1.42-1.45 ms,
#  10.95-11.0k tok/s. The head's 56.6 MB take 13.5 us at 4.2 TB/s; its 384 workgroups of
#  48.4 KB shared (3 an SM, one wave) each walk 6 stages of 24 KB, one stage in flight: ~9.4 MB
#  a round across the GPU, each round a DRAM burst (>= 2.3 us to drain at 4.2 TB/s) + the
#  latency + stores and two barriers, so ~3.5 us a round, ~21 us + x staging + epilogue + the
#  2.3 us floor ~ 28 us if nothing else bounds it; the 44 us says something else does
#  (candidates: the checks' clamps/loop counters around the coopLoads and the x loops;
#  registers -> fewer workgroups an SM; the bursty rounds).
#  PREDICTED: regs: unchecked <= checked registers, no local memory in either; AHEAD 2 +40..+50
#  registers. U head 30-40 us (50% that it gains >= 3 us), parity 0.0496 (logits bit-equal
#  or within 1e-6), argmax 3/3. W: 25-45 us (a coin flip; 40% it beats U). D: 8-12 us (the
#  fixed part). B: U +-3 us. tok/s: U - A +0.3..+0.9% (a step -5..-14 us), W - A -1..+1.2%;
#  A/A noise +-0.45%.
# RUNS: regs; A1 U1 W1 at --profile 5 --parity 24; D1 B1 at --profile 5 --parity 0 (D: wrong
#  logits, so no parity); then A2 U2 W2 W3 U3 A3 A4 U4 W4 at --profile 1 --parity 0.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s33head1}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-175}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s33-head-${CALL:-call1}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wpe.gz" > "$B/wpe" && chmod +x "$B/wpe" || { el "no wpe.gz"; exit 1; }
gunzip -c "$D/wdb.gz" > "$B/wdb" && chmod +x "$B/wdb" || el "no wdb.gz"
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
timeout 20 $B/wdb regs-head 576 > "$R/regs.txt" 2>&1; el "regs rc=$?"; cat "$R/regs.txt" | cut -c1-220
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
U="MOA_WGPU_COOP_HEAD_UNCHECKED=1"
envof() { case $1 in A*) echo "MOA_WGPU_COOP_HEAD_UNCHECKED=0";; U*) echo "$U";; W*) echo "$U MOA_WGPU_COOP_HEAD_AHEAD=2";;
  D*) echo "$U MOA_WGPU_COOP_HEAD_DIAG=1";; B*) echo "$U MOA_WGPU_COOP_HEAD_BLOCKS=3";; K*) echo "$U MOA_WGPU_COOP_HEAD_KS=96";; esac; }
step() { local name=$1 par=$2 prof=$3 cap=$4; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe --like smollm2-135m --rows 16 --new 256 --profile $prof \
    --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|row 0 tokens|Error|error" "$R/$name.txt" | cut -c1-200 | head -4
  grep -o -E "decode LM head: [^)]*\)" "$R/$name.txt" | head -1 | cut -c1-260; save; }
RUNS=${RUNS:-"A1:24:5:30 U1:24:5:30 W1:24:5:30 D1:0:5:25 B1:0:5:25 A2:0:1:20 U2:0:1:20 W2:0:1:20 W3:0:1:20 U3:0:1:20 A3:0:1:20 A4:0:1:20 U4:0:1:20 W4:0:1:20"}
for r in $RUNS; do IFS=: read -r n p f c <<< "$r"; step "$n" "$p" "$f" "$c"; done
summary() { printf "%-4s %6s %6s %5s %7s %6s %5s %5s %6s %6s %s\n" run tok/s ms/st disp dev_us attn gu down head argmax parity
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    di=$(grep -o -E "[0-9]+ dispatches/step" "$t" | head -1 | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-4s %6s %6s %5s %7s %6s %5s %5s %6s %6s %s\n" $name "${tok:--}" "${ms:--}" "${di:--}" "$(us step)" "$(per attention)" "$(per gate_up)" "$(per down)" "$(per head)" "$(per argmax)" "${par:+$par,$arg}"
  done
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; echo "$name $(grep -h 'row 0 tokens' $R/$name.txt | cut -c1-80) | $(grep -o -E 'decode LM head: .*' $R/$name.txt | grep -o -E 'max .err. [0-9.e-]+ on the start-up check' | head -1)"; done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
