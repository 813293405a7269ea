#!/bin/bash
# Session 32, s32-pattn, call 3 (PREPARED, NOT RUN by s32-pattn: its device budget was
# spent on calls 1 and 2): the group prefill attention (default = V staged in K's tile)
# against its opt-in MOA_WGPU_COOP_ATTN_MASK_SELECT=1. Call 2's DIAG=1 (no softmax, the
# staging kept) took the attention 80.0 -> 30.3 ms a pass (moa-50): the softmax is ~50 ms.
# Its two loops read a key's score only inside `if (visible)`, so each of the 32 reads a
# lane a loop may wait behind its own branch (a read is not hoisted above a branch); with
# MASK_SELECT every score is read and masked by select(): the 32 reads can go out at once
# and the second loop's can reuse the first's (no store or barrier between them).
#   bash .dev-s32-pattn/call3.sh   (END=90 by default; run tool timeout_s 120; carry
#   [".dev-s32-pattn"], filled by benches/wgpu-h200/s32/pattn/pack.sh from 1fbeaff's
#   release wgpu_products_engine, wgpu_decode_bench and model_gpu test binary)
# Runs, one process each (wpe --like smollm2-135m --rows 16 --prompt 4096 --new 2
# --profile-prefill --prefill-reps 3 --plan moa-50 --plan dense; the first of each with
# --parity 136): regs (layer 6: default, ms), then A1 M1 M2 A2 A3 M3, then model_gpu's two
# group-form tests (V in K's tile or not, each with select masks or not, against the CPU
# reference).
# PREDICTIONS: registers default 221, ms 215-240. Attention ms a pass, moa-50 / dense: A
#   79.7-80.7 / 120.0-121.0 (calls 1, 2); M 60-75 / 90-112 if the branches serialized the
#   reads, else a tie (+-0.5%). Parity of A and M 0.0474 / 0.0445, 3/3, start-up 4.9e-4
#   (select() changes no visible value). model_gpu's tests pass.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s32pattn3; rm -rf "$R"; mkdir -p "$R"
END=${END:-90}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s32-pattn-call3.tgz" -C "$R" .; }
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
timeout 25 /tmp/wdb regs-pattn $P 6 default,ms > "$R/regs.txt" 2>&1
el "regs rc=$?"; save
B="MOA_WGPU_COOP_ATTN_MASK_SELECT=1"
one A1 30 - --plan $P --plan dense --parity 136
one M1 25 "$B" --plan $P --plan dense --parity 136
one M2 15 "$B" --plan $P --plan dense --parity 0
one A2 15 - --plan $P --plan dense --parity 0
one A3 15 - --plan $P --plan dense --parity 0
one M3 15 "$B" --plan $P --plan dense --parity 0
if left; then
  timeout $(( END + 40 - ($(date +%s) - s) )) /tmp/model_gpu --test-threads 2 the_matrix_unit_prefill_attention > "$R/model_gpu.txt" 2>&1
  el "model_gpu rc=$?"
fi
{
  grep -E "regs" "$R/regs.txt" | cut -c1-400
  for n in A1 M1 M2 A2 A3 M3; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "== $n"
    grep -o -E "== smollm2-135m [^:]*|prefill attention: [^;]*|loaded in [0-9.]+ s|max .logit err. [0-9.e-]+|argmax equal [0-9/]+|warm prefill: .*|  attention: .*|       step: .*|Error.*|panicked.*" "$t" | cut -c1-260
  done
  echo "== model_gpu"; grep -E "^test |test result|panicked|prefill attention" "$R/model_gpu.txt" 2>/dev/null | cut -c1-300
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"; cat "$R/times.txt"
save
