#!/bin/bash
# Session 22, lead call 2 (one H200 through Vulkan): 4 rows a workgroup row in every
# subgroup product (MOA_WGPU_SG_ROWS=4) against the new default (8), s22-wgpu's untimed
# lever (the RMSNorm form at 4 rows holds 64 registers against 112 at 8), one process a run.
#   bash .dev-s22-rows/rows4.sh   (run tool timeout_s 150; carry [".dev-s22-rows"], filled by
#   pack-closing.sh: merged main's release wgpu_products_engine and the Vulkan .debs)
# SmolLM2 shape, random weights, 16 x 4096, moa-50, 64 greedy tokens, --profile 5,
# MOA_WGPU_COOP_ATTN=0; w0 (untimed warm-up: the fresh machine's shader compiles), then
# r8 r4 r4 r8 r8 r4; r4's first run with --parity 24.
# PREDICTIONS (before the call): qkv 5.7-5.9 (r8) against 5.2-5.7 (r4: half the x loads and
#   sums again, its 64 registers let two waves of its doubled grid stay resident); out and
#   down about equal or slower at 4 (80 registers already one wave at 8; each weight then
#   read by 4 workgroups instead of 2): out 4.3-4.6 both, down 6.0-6.4 both; device step
#   within +-20 us of r8 (1.49-1.51 ms). Parity max |logit err| ~0.05, argmax 3/3.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s22rows; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/rows.tgz" -C "$R" .; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export MOA_WGPU_COOP_ATTN=0
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
el start
for r in w0:8:0:40 r8a:8:0:15 r4a:4:24:25 r4b:4:0:15 r8b:8:0:15 r8c:8:0:15 r4c:4:0:15; do
  IFS=: read -r n rows par cap <<< "$r"
  MOA_WGPU_SG_ROWS=$rows timeout $cap /tmp/wpe $A --parity $par > "$R/$n.txt" 2>&1; el "$n rc=$?"; save
done
for n in r8a r4a r4b r8b r8c r4c; do t=$R/$n.txt
  tok=$(grep -o -E "= [0-9]+ tok/s" "$t" | tail -1)
  us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us (device|/dispatch)" | head -1; }
  per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
  echo "$n $tok step=$(us step) attn=$(per attention) qkv=$(per qkv) out=$(per out) gu=$(per gate_up) down=$(per down) $(grep -o -E 'max .logit err. [0-9.]+|argmax equal [0-9/]+' "$t" | tr '\n' ' ')"
done | tee "$R/summary.txt"; grep -h -o -E "decode products: [^;]*" "$R/r4a.txt" | head -1; save
