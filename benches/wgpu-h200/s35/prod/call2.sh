#!/bin/bash
# Session 35, branch s35-prod, call 2 (one H200 through Vulkan): the subgroup products' grid with
# the row blocks of a column workgroup next to each other (MOA_WGPU_SG_ROWS_FIRST=1), on the
# branch's new default (MOA_WGPU_SG_EARLY=1, call 1's winner; MOA_WGPU_SG_HOIST deleted).
#   BIN=/tmp/s35-prod-bin2 bash benches/wgpu-h200/s35/prod/pack.sh /work/main/.dev-s35-prod
#   END=88 bash .dev-s35-prod/call2.sh   (carry [".dev-s35-prod"]; run tool timeout_s 100)
# Runs, each its own process: SmolLM2 shape, 16 rows x 4096, moa-50, 256 greedy tokens,
# --profile 5, MOA_WGPU_COOP_ATTN=0. W a throwaway warm-up (--new 8). D = the default,
# R = MOA_WGPU_SG_ROWS_FIRST=1. R1 (--parity 24) D1, then D2 R2 R3 D3 D4 R4 (--parity 0).
# MODEL / PREDICTION (written before the call):
#  Every subgroup-product workgroup reads its 8 rows' whole x: down 49 KB of f32 x (12 KB of
#  weights) x 288 workgroups = 14 MB a dispatch from L1/L2, qkv 18 KB x 480 = 8.8 MB, out (f16 x)
#  9 KB x 288 = 2.7 MB. Down's x loads cost 0.87 us over its weights-only twin (s34-sg's DIAG
#  3 - DIAG 4). Today an SM holds workgroups i, i + 132, (i + 264): for down cg i (rows 0-7) and
#  cg i - 12 (rows 8-15): both row blocks' x. Rows first (id = 2 cg + rb) gives i, i + 132,
#  i + 264 one parity: one row block an SM, if the scheduler deals workgroups out in turn and L1
#  keeps x for the co-resident ones (50%: otherwise a no-op within noise).
#  PREDICTED: down -0.2..-0.5 us (6.0 -> 5.5-5.8), qkv -0.1..-0.4, out 0..-0.2, gate_up (matrix
#  units) unchanged; device step -10..-30 us, tokens/s R above D in every pair: 40%.
#  Parity 0.0534, argmax 3/3 (the same sums).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s35prod2; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-88}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s35-prod-call2.tgz" -C "$R" . 2>/dev/null; cp "$R/times.txt" "$R/summary.txt" "${OUT:-/tmp}/" 2>/dev/null; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
el start
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
envof() { case $1 in R*) echo "MOA_WGPU_SG_ROWS_FIRST=1";; *) echo "MOA_WGPU_SG_ROWS_FIRST=0";; esac; }
dec() { local name=$1 par=$2 new=${3:-256}; left 9 || { el "skip $name"; return; }
  echo "$name: $(envof $name) --parity $par --new $new" >> "$R/envs.txt"
  env $(envof $name) timeout 25 /tmp/wpe --like smollm2-135m --rows 16 --new $new --profile 5 --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -o -E 'max .logit err. [^,]*, argmax equal [0-9/]+' $R/$name.txt)"; }
dec W 0 8
grep -o -E "decode products: [^;]*" "$R/W.txt" | head -1 | cut -c1-300 | tee -a "$R/times.txt"
dec R1 24; dec D1 0; save
for n in D2 R2 R3 D3 D4 R4; do dec $n 0; done
grep -o -E "decode products: [^;]*" "$R/R1.txt" | head -1 | cut -c1-300 >> "$R/times.txt"
{ printf "%-4s %7s %8s %6s %6s %6s %6s %6s %6s %s\n" run tok/s step_us qkv attn out gate_up down probe parity
  for f in "$R"/*.txt; do n=$(basename $f .txt); case $n in times|summary|regs|gpu|envs) continue;; esac
    u() { grep -m1 -E "^ *$1: " $f | grep -o -E '[0-9.]+ us/dispatch' | cut -d' ' -f1; }
    st=$(grep -m1 -E "^ *step: " $f | grep -o -E '[0-9.]+ us device' | cut -d' ' -f1)
    printf "%-4s %7s %8s %6s %6s %6s %6s %6s %6s %s\n" $n "$(grep -o -E '[0-9]+ tok/s' $f | tail -1 | cut -d' ' -f1)" "$st" \
      "$(u qkv)" "$(u attention)" "$(u out)" "$(u gate_up)" "$(u down)" "$(u probe)" \
      "$(grep -o -E 'max .logit err. [0-9.]+' $f | grep -o -E '[0-9.]+$') $(grep -o -E 'argmax equal [0-9/]+' $f | cut -d' ' -f3)"
  done; } > "$R/summary.txt"
cat "$R/summary.txt"; el done; save
