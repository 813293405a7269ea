#!/bin/bash
# Session 32, s32-soft, call 1: the group prefill attention's softmax with its scores in
# registers (MOA_WGPU_COOP_ATTN_SCORE_REGS=1, B) against main's defaults (A: K staged, V
# early, V in K's tile, select masks). The lead's call 2 put the attention at 77.3 ms a
# pass (moa-50; 114.6 dense) and s32-pattn's DIAG=1 (no softmax) at 30.3: the softmax's two
# loops over the scores in workgroup memory are ~47 ms. B reads each invocation's 32
# scores (SG 32: 2 lanes a row) once, 4 keys a read from 16-byte-aligned addresses (8
# vector reads instead of 2 x 32 scalar), into registers for the maximum and P, and masks
# (vector compare + select) only in key tiles not wholly visible to the query (most of a
# long band's tiles are whole), with the quarter-subgroup's 8 lanes on distinct bank groups.
#   bash .dev-s32-soft/call1.sh   (END=90 by default; run tool timeout_s 115; carry
#   [".dev-s32-soft"], filled by benches/wgpu-h200/s32/soft/pack.sh from s32-soft's
#   release wgpu_products_engine, wgpu_decode_bench and model_gpu test binary)
# Runs, one process each (wpe --like smollm2-135m --rows 16 --prompt 4096 --new 2
# --profile-prefill --prefill-reps 3 --plan moa-50 --plan dense; the first of each with
# --parity 136): regs (layer 6: ms = main's default form, ms+sr = B), then A1 B1 B2 A2 A3
# B3, then model_gpu's group-form tests (V in K's tile or not, select masks or not, scores
# in registers or not, against the CPU reference).
# PREDICTIONS: registers A 236, B 236-255 (32 more f32 live across the softmax only; a
#   spill at 255 would cost). Attention ms a pass, moa-50 / dense: A 77.2-77.4 /
#   114.5-114.7 (lead call 2, A/A 0.2% / 0.04%); B 66-73 / 97-108 (the softmax 47 -> 36-43
#   ms: half the shared-memory read instructions, the mask gone from whole tiles); a tie
#   would say the loops wait on exp2 / the P stores, not the reads. Parity of A and B
#   0.0474 / 0.0445, 3/3 (B changes only the f32 summation order of l), start-up 4.9e-4.
#   model_gpu's tests pass.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s32soft1; rm -rf "$R"; mkdir -p "$R"
END=${END:-90}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s32-soft-call1.tgz" -C "$R" .; }
left() { [ $(( $(date +%s) - s )) -lt "$END" ]; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
gunzip -c "$D/wdb.gz" > /tmp/wdb && chmod +x /tmp/wdb
gunzip -c "$D/model_gpu.gz" > /tmp/model_gpu && chmod +x /tmp/model_gpu
# The test binary was built in /work/wt-s32-soft (CARGO_TARGET_TMPDIR /work/main/target/tmp).
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
[ -e /work/wt-s32-soft ] || ln -s "$ROOT" /work/wt-s32-soft
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
timeout 25 /tmp/wdb regs-pattn $P 6 ms,ms+sr > "$R/regs.txt" 2>&1
el "regs rc=$?"; save
B="MOA_WGPU_COOP_ATTN_SCORE_REGS=1"
one A1 30 - --plan $P --plan dense --parity 136
one B1 25 "$B" --plan $P --plan dense --parity 136
one B2 15 "$B" --plan $P --plan dense --parity 0
one A2 15 - --plan $P --plan dense --parity 0
one A3 15 - --plan $P --plan dense --parity 0
one B3 15 "$B" --plan $P --plan dense --parity 0
if left; then
  timeout $(( END + 20 - ($(date +%s) - s) )) /tmp/model_gpu --test-threads 2 the_matrix_unit_prefill_attention > "$R/model_gpu.txt" 2>&1
  el "model_gpu rc=$?"
fi
{
  grep -E "regs" "$R/regs.txt" | cut -c1-400
  for n in A1 B1 B2 A2 A3 B3; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "== $n"
    grep -o -E "== smollm2-135m [^:]*|prefill attention: [^;]*|loaded in [0-9.]+ s|max .logit err. [0-9.e-]+|argmax equal [0-9/]+|warm prefill: .*|  attention: .*|       step: .*|Error.*|panicked.*" "$t" | cut -c1-260
  done
  echo "== model_gpu"; grep -E "^test |test result|panicked|prefill attention" "$R/model_gpu.txt" 2>/dev/null | cut -c1-300
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"; cat "$R/times.txt"
save
