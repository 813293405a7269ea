#!/bin/bash
# Session 35, branch s35-down2, call 1 (one H200 through Vulkan): the down product's x traffic.
# A = MOA_WGPU_ACT_F16=1 (the gate/up epilogue writes the SwiGLU activations as f16, down reads
# f16 x: half its x bytes); C = A + MOA_WGPU_SG_COLS=8 (down at 8 columns a subgroup: half the
# workgroups read x; with f16 a quarter of today's x bytes); D = the default (main's).
#   BIN=/tmp/s35-down2-bin bash benches/wgpu-h200/s35/down2/pack.sh /work/main/.dev-s35-down2
#   END=165 bash .dev-s35-down2/call1.sh   (carry [".dev-s35-down2"]; run tool timeout_s 180)
# Runs, each its own process: SmolLM2 shape, 16 rows x 4096, moa-50, 256 greedy tokens,
# --profile 5, MOA_WGPU_COOP_ATTN=0. W a throwaway warm-up (--new 8). Rounds D A C (--parity
# 24), C A D, A D C, D C A (--parity 0), as far as END allows (a run ~10 s).
# MODEL / PREDICTION (written before the call):
#  Down (fitted 6 subgroups x 2 steps; 144 column groups of 4 x 2 row blocks of 8 = 288
#  workgroups, each reading its 8 rows' whole x) reads 14 MB of f32 x a dispatch through L2
#  against 3.5 MB of weights; its x loads cost ~0.87 us over the weights-only twin (s34-sg DIAG 3 - DIAG 4).
#  A: x bytes halved, x registers halved (the f16-x 6 x 2 kernel is 80 registers against 86,
#  s35-prod's regs table: the out column) -> down 5.95 -> 5.5-5.75 us (-0.2..-0.45); gate_up
#  (matrix units, f16 stores: half the output bytes) 0..-0.1; step -6..-16 us; tokens/s
#  +0.4..+1.1%, A above D in every round: 60%.
#  C: 144 workgroups (one wave at 2 an SM) each with twice the sums a lane (~64 accumulators
#  + 2 weight matrices: ~110-130 registers), x bytes a quarter of D's -> down -0.3..+0.6 us
#  against A (fewer workgroups to hide the dependent weight round trips: 35% it beats A).
#  Parity: D 0.0534 argmax 3/3; A and C within 0.0534 +- 0.003, argmax 3/3 (the activations
#  rounded to f16 once; C sums each column in A's order: A's logits).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s35down2c1; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-165}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s35-down2-call1.tgz" -C "$R" . 2>/dev/null; cp "$R/times.txt" "$R/summary.txt" "${OUT:-/tmp}/" 2>/dev/null; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
el start
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
envof() { case $1 in A*) echo "MOA_WGPU_ACT_F16=1";; C*) echo "MOA_WGPU_ACT_F16=1 MOA_WGPU_SG_COLS=8";; *) echo "MOA_WGPU_ACT_F16=0";; esac; }
dec() { local name=$1 par=$2 new=${3:-256}; left 11 || { el "skip $name"; return; }
  echo "$name: $(envof $name) --parity $par --new $new" >> "$R/envs.txt"
  env $(envof $name) timeout 25 /tmp/wpe --like smollm2-135m --rows 16 --new $new --profile 5 --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -o -E 'max .logit err. [^,]*, argmax equal [0-9/]+' $R/$name.txt)"; }
dec W 0 8
grep -o -E "decode products: [^;]*" "$R/W.txt" | head -1 | cut -c1-300 | tee -a "$R/times.txt"
dec D1 24; dec A1 24; dec C1 24; save
for n in C2 A2 D2 A3 D3 C3 D4 C4 A4; do dec $n 0; done
grep -o -E "decode products: .*" "$R/C1.txt" | head -1 | cut -c1-700 >> "$R/times.txt"
{ printf "%-4s %7s %8s %6s %6s %6s %6s %6s %6s %s\n" run tok/s step_us qkv attn out gate_up down probe parity
  for f in "$R"/*.txt; do n=$(basename $f .txt); case $n in times|summary|regs|gpu|envs) continue;; esac
    u() { grep -m1 -E "^ *$1: " $f | grep -o -E '[0-9.]+ us/dispatch' | cut -d' ' -f1; }
    st=$(grep -m1 -E "^ *step: " $f | grep -o -E '[0-9.]+ us device' | cut -d' ' -f1)
    printf "%-4s %7s %8s %6s %6s %6s %6s %6s %6s %s\n" $n "$(grep -o -E '[0-9]+ tok/s' $f | tail -1 | cut -d' ' -f1)" "$st" \
      "$(u qkv)" "$(u attention)" "$(u out)" "$(u gate_up)" "$(u down)" "$(u probe)" \
      "$(grep -o -E 'max .logit err. [0-9.]+' $f | grep -o -E '[0-9.]+$') $(grep -o -E 'argmax equal [0-9/]+' $f | cut -d' ' -f3)"
  done; } > "$R/summary.txt"
cat "$R/summary.txt"; el done; save
