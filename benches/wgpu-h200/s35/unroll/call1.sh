#!/bin/bash
# Session 35, s35-unroll call 1 (one H200 through Vulkan): the scalar WGSL decode's heads
# are now unrolled only while group x head_dim <= 512 (codegen::wgsl::DECODE_UNROLLED_WORK);
# past it they loop, which takes the eager form (the lazy and quad forms need unrolled heads).
# Does that cost the GPU? The scalar decode runs on GPUs in `moa-compile` folders and with
# MOA_WGSL_SG_DECODE=0 (the engine's default is the flat decode on subgroups, unchanged).
#   bash .dev-s35-unroll/call1.sh   (carry [".dev-s35-unroll"]; run tool timeout_s 65)
# Runs, each rule alternated new / old / new / old (MOA_WGSL_DECODE_UNROLL=old: every group
# of up to 8 unrolled, session 34's rule), the bench's scalar decode (f16 storage):
#  A: Llama-3-8B's upstream plan read with 4 KV heads (group 8 x head_dim 128, Llama-3-70B's
#     shape), layers 0 and 16, 16 rows at prompt 4096 (N 5120);
#  B: hd256-g8.toml (group 8 x head_dim 256, 2 layers), 16 rows at N 4096, new / old once.
# Each run at most 15 s; results saved after each.
# MODEL and PREDICTION (written before the call): session 9 measured the quad form 1.26x the
# eager form's speed on Llama-3-8B (group 4 x 128). At group 8 the unrolled quad form shares
# each K/V load over 8 heads in registers; the looped eager form re-reads staged queries per
# head and takes two barriers and an atomicMax per (slot, head) a tile: expect the new rule
# 1.2-1.6x slower at 128 x 8 (old ~ quad form's rate), and likewise or worse at 256 x 8
# unless the old rule's 438 KB kernel spills (256 x 8 unrolled: 8 heads x 8 accumulator
# vec4s = 64 vec4 registers + loads in flight): there the old form may be no faster.
# If new is slower by more than noise, the GPU keeps the unrolled form only below the
# threshold (as now); a CPU adapter's minutes-long compile is fixed either way.
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/s35unroll1; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s35-unroll1.tgz" -C "$R" .; cp "$R/times.txt" "$R/summary.txt" "${OUT:-/tmp}/" 2>/dev/null; }
gunzip -c "$D/wdb.gz" > /tmp/wdb && chmod +x /tmp/wdb
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export MOA_WGSL_SG_DECODE=0
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
el start
run() { local name=$1 rule=$2; shift 2
  if [ "$rule" = old ]; then export MOA_WGSL_DECODE_UNROLL=old; else unset MOA_WGSL_DECODE_UNROLL; fi
  timeout 15 /tmp/wdb "$@" > "$R/$name.txt" 2>&1; el "$name rc=$?"
  { echo "== $name ($rule) $*"; grep -E "^decode kernels|^layer" "$R/$name.txt" | cut -c1-220; } >> "$R/summary.txt"; save; }
for i in 1 2; do
  run A-new$i new upstream $L 4 0,16 16 4096
  run A-old$i old upstream $L 4 0,16 16 4096
done
run B-new1 new plan "$D/hd256-g8.toml" 0,1 16 4096
run B-old1 old plan "$D/hd256-g8.toml" 0,1 16 4096
save
