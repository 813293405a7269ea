#!/bin/bash
# Session 36, branch s36-head, call 2 (one H200 through Vulkan): the head in workgroups of 16
# subgroups (MOA_WGPU_COOP_HEAD_WIDE=6: coop_head_wide.wgsl, 128 workgroups of 512 invocations,
# 6 blocks of 64 columns each, a block's 3 stages of weights in flight) against main's head.
#   BIN=/tmp/s36-head-bin2 bash benches/wgpu-h200/s36/head/pack.sh /work/main/.dev-s36-head
#   END=80 bash .dev-s36-head/call2.sh   (carry [".dev-s36-head"]; run tool timeout_s 100)
# Runs: `wdb regs-head 576` (the driver's registers of both forms); then each its own process:
# SmolLM2 shape, 16 rows x 4096, moa-50, 256 greedy tokens, MOA_WGPU_COOP_ATTN=0. W a throwaway
# warm-up (--new 8); N = MOA_WGPU_COOP_HEAD_WIDE=6, A = main's head. N1 A1 at --profile 5 (N1 with
# --parity 24), then pairs in alternating order at --profile 1: A2 N2 | N3 A3 | A4 N4 | N5 A5.
# If N1's engine did not take the wide head (its start-up check failed), the pairs are skipped.
# MODEL (call 1: stream of 56.6 MB 16.0-16.3 us; head 30.2-32.7 us, without weights 9.2): today's
# head holds <= 48 KB of weights in flight an SM (2 workgroups at 247 registers, one 24 KB stage
# each, the fetch issued only after the last stage's store), two waves. The wide form: 512
# invocations force <= 128 registers; one workgroup an SM holds 3 stages = 72 KB in flight, one wave
# of 128 workgroups, x staged once a workgroup (128 times, not 384), 16 subgroups at each barrier.
# PREDICTION (written before the call): regs wide 90-128, workgroup memory 41 984 B, no spill
# reported (60%); start-up check passes, parity 0.050-0.056, argmax 3/3, greedy tokens as A's.
# Head N 17-25 us (--profile 5) against A 30-32; tokens/s N - A +0.4..+1.0%; N above A in every
# pair: 55%. A loss (spills or 16-subgroup barriers) would show as head >= 32 us.
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/s36head2; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-80}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s36-head-call2.tgz" -C "$R" . 2>/dev/null; cp "$R/times.txt" "$R/summary.txt" "${OUT:-/tmp}/" 2>/dev/null; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
gunzip -c "$D/wdb.gz" > /tmp/wdb && chmod +x /tmp/wdb
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
el start
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
envof() { case $1 in N*) echo "MOA_WGPU_COOP_HEAD_WIDE=6";; *) echo "MOA_WGPU_COOP_HEAD_WIDE=0";; esac; }
dec() { local name=$1 prof=$2 par=$3 new=${4:-256}; left 8 || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par --new $new" >> "$R/envs.txt"
  env $(envof $name) timeout 25 /tmp/wpe --like smollm2-135m --rows 16 --new $new --profile $prof --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -m1 -E '^ *head: ' $R/$name.txt | grep -o -E '[0-9.]+ us/dispatch') $(grep -o -E 'max .logit err. [^,]*, argmax equal [0-9/]+' $R/$name.txt)"; }
timeout 20 /tmp/wdb regs-head 576 > "$R/regs.txt" 2>&1; el "regs rc=$?"; grep -E "BPW 2 checked=false|wide" "$R/regs.txt" | cut -c1-260 | tee -a "$R/times.txt"
dec W 1 0 8
dec N1 5 24
grep -o -E "LM head: [^;]*" "$R/N1.txt" | head -1 | cut -c1-300 | tee -a "$R/times.txt"
grep -E "greedy tokens|row 0 tokens" "$R/N1.txt" | cut -c1-220 >> "$R/times.txt"
if grep -q "coop_head_wide.wgsl" "$R/N1.txt"; then
  dec A1 5 0; grep -E "row 0 tokens" "$R/A1.txt" | cut -c1-220 >> "$R/times.txt"; save
  dec A2 1 0; dec N2 1 0; dec N3 1 0; dec A3 1 0; dec A4 1 0; dec N4 1 0; dec N5 1 0; dec A5 1 0
else el "N1 did not take the wide head: pairs skipped"; fi
{ printf "%-4s %7s %8s %6s %6s %6s %6s %6s %6s %6s %6s %s\n" run tok/s step_us qkv attn out gate_up down head argmax probe parity
  for f in "$R"/*.txt; do n=$(basename $f .txt); case $n in times|summary|gpu|envs|regs) continue;; esac
    u() { grep -m1 -E "^ *$1: " $f | grep -o -E '[0-9.]+ us/dispatch' | cut -d' ' -f1; }
    st=$(grep -m1 -E "^ *step: " $f | grep -o -E '[0-9.]+ us device' | cut -d' ' -f1)
    printf "%-4s %7s %8s %6s %6s %6s %6s %6s %6s %6s %6s %s\n" $n "$(grep -o -E '[0-9]+ tok/s' $f | tail -1 | cut -d' ' -f1)" "$st" \
      "$(u qkv)" "$(u attention)" "$(u out)" "$(u gate_up)" "$(u down)" "$(u head)" "$(u argmax)" "$(u probe)" \
      "$(grep -o -E 'max .logit err. [0-9.]+' $f | grep -o -E '[0-9.]+$') $(grep -o -E 'argmax equal [0-9/]+' $f | cut -d' ' -f3)"
  done; } > "$R/summary.txt"
cat "$R/summary.txt"; el done; save
