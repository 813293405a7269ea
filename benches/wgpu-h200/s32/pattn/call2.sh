#!/bin/bash
# Session 32, s32-pattn, call 2 (one H200 through Vulkan): the group prefill attention
# (prefill_coop_group.wgsl.j2, default = V staged in K's tile) against its opt-in
# MOA_WGPU_COOP_ATTN_STORE_ROT=1, and where its time goes (timing diagnostics, wrong results).
# Call 1 found the staged words' load latency is not what a tile waits for (PREFETCH: tie
# moa-50, +2.3% dense). The staging's stores are 8 two-byte stores a 16-byte word (WGSL's
# cooperative loads need an f16 array: no 16-byte store); a warp's lanes write 8 rows x 8
# words, rows 144 bytes apart, so one store instruction hits 8 of 32 banks (4-way
# conflicts), 48 such stores a lane a tile, unless the driver merges them into 16-byte
# stores. STORE_ROT rotates each lane's store order by its row: 32 distinct banks.
# Diagnostics (moa-50 only, --parity 0): DIAG=6 no staging in the loop (no K/V word loads
# or stores after tile 0's K; the 4 workgroup barriers kept), DIAG=7 none of the 4
# workgroup barriers a tile (stores race reads), DIAG=1 no softmax (staging kept).
#   bash .dev-s32-pattn/call2.sh   (END=110 by default; run tool timeout_s 150; carry
#   [".dev-s32-pattn"], filled by benches/wgpu-h200/s32/pattn/pack.sh)
# Runs, one process each (wpe --like smollm2-135m --rows 16 --prompt 4096 --new 2
# --profile-prefill --prefill-reps 3): regs (layer 6: default, rot, novk, d6, d7), then
# A1 R1 R2 A2 (moa-50 and dense; the first of each with --parity 136), D6 D7 D1 (moa-50),
# A3 R3, then model_gpu's two group-form tests (V in K's tile or not, each rotated or not).
# PREDICTIONS: registers default 221, rot 221-232 (the dynamic component pick), novk 255,
#   d6 190-221, d7 221. Attention ms a pass, moa-50 / dense: A 80.0-80.7 / 120.0-121.0
#   (call 1); R 72-78 / 108-117 if the driver keeps 2-byte stores, else a loss of 0-3%
#   (the rotation stops a merge). D6 60-70 (staging 10-20 ms), D7 65-75 (barriers), D1
#   50-60 (softmax 20-30 ms). Parity of A and R 0.0474 / 0.0445, 3/3, start-up 4.9e-4.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s32pattn2; rm -rf "$R"; mkdir -p "$R"
END=${END:-110}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s32-pattn-call2.tgz" -C "$R" .; }
left() { [ $(( $(date +%s) - s )) -lt "$END" ]; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
gunzip -c "$D/wdb.gz" > /tmp/wdb && chmod +x /tmp/wdb
gunzip -c "$D/model_gpu.gz" > /tmp/model_gpu && chmod +x /tmp/model_gpu
# The test binary was built in /work/wt-s32-pattn (CARGO_TARGET_TMPDIR /work/main/target/tmp).
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
[ -e /work/wt-s32-pattn ] || ln -s "$ROOT" /work/wt-s32-pattn
mkdir -p /work/main/target/tmp
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1
mkdir -p /tmp/nv; export __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 2 --profile-prefill --prefill-reps 3"
one() {  # name, cap, env assignments ("-" for none), then wpe's args
  local n=$1 cap=$2 e=$3; shift 3
  left || { el "$n skipped (END)"; return; }
  [ "$e" = - ] && e=""
  env $e timeout "$cap" /tmp/wpe $A "$@" > "$R/$n.txt" 2>&1
  el "$n rc=$?"; save
}
el start
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv > "$R/gpu.txt" 2>&1
timeout 25 /tmp/wdb regs-pattn $P 6 default,rot,novk,d6,d7 > "$R/regs.txt" 2>&1
el "regs rc=$?"; save
B="MOA_WGPU_COOP_ATTN_STORE_ROT=1"
one A1 30 - --plan $P --plan dense --parity 136
one R1 25 "$B" --plan $P --plan dense --parity 136
one R2 15 "$B" --plan $P --plan dense --parity 0
one A2 15 - --plan $P --plan dense --parity 0
one D6 15 "MOA_WGPU_COOP_ATTN_DIAG=6" --plan $P --parity 0
one D7 15 "MOA_WGPU_COOP_ATTN_DIAG=7" --plan $P --parity 0
one D1 15 "MOA_WGPU_COOP_ATTN_DIAG=1" --plan $P --parity 0
one A3 15 - --plan $P --plan dense --parity 0
one R3 15 "$B" --plan $P --plan dense --parity 0
if left; then
  timeout $(( END + 40 - ($(date +%s) - s) )) /tmp/model_gpu --test-threads 2 the_matrix_unit_prefill_attention > "$R/model_gpu.txt" 2>&1
  el "model_gpu rc=$?"
fi
{
  grep -E "regs" "$R/regs.txt" | cut -c1-400
  for n in A1 R1 R2 A2 D6 D7 D1 A3 R3; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "== $n"
    grep -o -E "== smollm2-135m [^:]*|prefill attention: [^;]*|loaded in [0-9.]+ s|max .logit err. [0-9.e-]+|argmax equal [0-9/]+|warm prefill: .*|  attention: .*|       step: .*|Error.*|panicked.*" "$t" | cut -c1-260
  done
  echo "== model_gpu"; grep -E "^test |test result|panicked|prefill attention" "$R/model_gpu.txt" 2>/dev/null | cut -c1-300
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"; cat "$R/times.txt"
save
