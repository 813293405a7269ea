#!/bin/bash
# Session 36, branch s36-head, call 1 (one H200 through Vulkan): where the LM head stands against its
# bytes, measured in one call before anything is built (binaries of main e98094be).
#   BIN=/tmp/s36-head-bin bash benches/wgpu-h200/s36/head/pack.sh /work/main/.dev-s36-head
#   END=95 bash .dev-s36-head/call1.sh   (carry [".dev-s36-head"]; run tool timeout_s 120)
# Runs: `wdb stream 56.6` (the head's 56.6 MB read by the stream shapes, rotated past the L2, each
# timed as dependent dispatches, with the copy's rate and an empty dispatch); then each its own
# process: SmolLM2 shape, 16 rows x 4096, moa-50, 256 greedy tokens, --profile 5,
# MOA_WGPU_COOP_ATTN=0. W a throwaway warm-up (--new 8); A = main's head (staged, 2 blocks), Z =
# MOA_WGPU_COOP_HEAD=0 (the head on the fitted subgroup products, the argmax in two dispatches after
# it), T = MOA_WGPU_COOP_HEAD=direct (coop_matvec.wgsl's direct walk, unchecked since s34-prod, never
# timed so), B = MOA_WGPU_COOP_HEAD_BLOCKS=3 (one wave), D = MOA_WGPU_COOP_HEAD_DIAG=1 (no weights:
# the head's fixed part). A1 Z1 T1 at --parity 24, then B1 D1 A2 Z2 B2 A3 at --parity 0.
# MODEL / PREDICTION (written before the call):
#  The head's 56.6 MB take 13.8 us at the copy's 4.1 TB/s; a stream kernel pays the ~2.4 us floor
#  and a ramp: best stream shape 15.5-18 us (3.1-3.7 TB/s read), empty dispatch 2.3-2.6 us.
#  A: head 28-34 us, argmax 1.5-4; so the gap to the stream ~12-16 us.
#  D (no weights): 6-11 us (s33 by the step: 9.3): two waves of x staging + barriers + epilogues.
#  B (one wave): head 25-31 us, tokens/s within +-0.4% of A.
#  Z: the subgroup product at KSPLIT 1 with 8 rows a workgroup row reads the weights twice (two row
#  blocks, 113 MB through the L2) and does 0.45 G multiply-adds on the FP32 units (>= 7 us at peak):
#  head 40-70 us + argmax 2 dispatches 4-6 us; tokens/s -1.5..-4% against A; parity ~0.05, 3/3.
#  T (direct, unchecked): 16-strided 32-byte B fragments from DRAM, 41-ish registers: 30-55 us
#  (45% that it is within 3 us of A); parity ~0.05, 3/3.
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/s36head1; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-85}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s36-head-call1.tgz" -C "$R" . 2>/dev/null; cp "$R/times.txt" "$R/summary.txt" "${OUT:-/tmp}/" 2>/dev/null; }
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
envof() { case $1 in Z*) echo "MOA_WGPU_COOP_HEAD=0";; T*) echo "MOA_WGPU_COOP_HEAD=direct";;
  B*) echo "MOA_WGPU_COOP_HEAD_BLOCKS=3";; D*) echo "MOA_WGPU_COOP_HEAD_DIAG=1";; *) echo "MOA_WGPU_STATS=0";; esac; }
dec() { local name=$1 par=$2 new=${3:-256}; left 9 || { el "skip $name"; return; }
  echo "$name: $(envof $name) --parity $par --new $new" >> "$R/envs.txt"
  env $(envof $name) timeout 25 /tmp/wpe --like smollm2-135m --rows 16 --new $new --profile 5 --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -m1 -E '^ *head: ' $R/$name.txt | grep -o -E '[0-9.]+ us/dispatch') $(grep -o -E 'max .logit err. [^,]*, argmax equal [0-9/]+' $R/$name.txt)"; }
dec W 0 8
grep -o -E "LM head[^;]*|head: [^;]*" "$R/W.txt" | head -2 | cut -c1-300 | tee -a "$R/times.txt"
timeout 30 /tmp/wdb stream 56.6 > "$R/stream.txt" 2>&1; el "stream rc=$?"; save
dec A1 24; dec Z1 24; dec T1 24; save
dec B1 0; dec D1 0; dec A2 0; dec Z2 0; dec B2 0; dec A3 0
for n in Z1 T1 B1 D1; do grep -o -E "LM head[^;]*" "$R/$n.txt" | head -1 | cut -c1-300 | sed "s/^/$n: /" >> "$R/times.txt"; done
{ printf "%-4s %7s %8s %6s %6s %6s %6s %6s %6s %6s %6s %s\n" run tok/s step_us qkv attn out gate_up down head argmax probe parity
  for f in "$R"/*.txt; do n=$(basename $f .txt); case $n in times|summary|gpu|envs|stream) continue;; esac
    u() { grep -m1 -E "^ *$1: " $f | grep -o -E '[0-9.]+ us/dispatch' | cut -d' ' -f1; }
    st=$(grep -m1 -E "^ *step: " $f | grep -o -E '[0-9.]+ us device' | cut -d' ' -f1)
    printf "%-4s %7s %8s %6s %6s %6s %6s %6s %6s %6s %6s %s\n" $n "$(grep -o -E '[0-9]+ tok/s' $f | tail -1 | cut -d' ' -f1)" "$st" \
      "$(u qkv)" "$(u attention)" "$(u out)" "$(u gate_up)" "$(u down)" "$(u head)" "$(u argmax)" "$(u probe)" \
      "$(grep -o -E 'max .logit err. [0-9.]+' $f | grep -o -E '[0-9.]+$') $(grep -o -E 'argmax equal [0-9/]+' $f | cut -d' ' -f3)"
  done; cat "$R/stream.txt"; } > "$R/summary.txt"
cat "$R/summary.txt"; el done; save
