#!/bin/bash
# The WGSL decode forms in the wgpu engine's decode step (written in session 14, branch
# s14-engine, on a machine without a GPU: NOT YET RUN). Issue 12: SmolLM2-135M 16 x 4096,
# moa-50, is at 12.8-12.9% of the memory roofline (target 25%); attention + merge are
# 22.1-22.7 + 4.0-4.5 us a layer of the 1.891-1.912 ms device step (RESULTS "Lead calls
# (session 13, merged main)", `off` rows: 8 123-8 156 tok/s, wall 1.94-1.95 ms/step).
# s14-wgsl's forms were checked only in the kernel bench's terms (predictions, not yet
# measured: RESULTS "WGSL decode, session 14"), and session 13's fused merge won in the
# kernel bench (0.887x) but lost in the step. So each form runs here in the engine's step:
# one binary (release examples/wgpu_products_engine of s14-engine), the form chosen by the
# engine's own variables (WgpuEngineOptions::wgsl_tuning; the load line names it:
# "WGSL attention tuning: ..."), A/B/A/B one process each:
#   base  = main's default decode (quad, paired sums, early V for GQA, f16 products,
#           separate merge dispatch)
#   k     = MOA_WGSL_ITEM_LOADS=k         the first tile's K loads with the work item
#   kv    = MOA_WGSL_ITEM_LOADS=kv        its K and V loads so (V in registers)
#   kvs   = MOA_WGSL_ITEM_LOADS=kv-shared V parked in workgroup memory (28 KiB a workgroup)
#   nk    = MOA_WGSL_NEXT_K=1             each later tile's K loaded during the tile before
#   kvnk  = kv + next K
#   fused = MOA_WGSL_FUSED_MERGE=1        the decode merges its own segments (no merge dispatch)
# Predictions (before any run; from the kernel bench's per-layer-step predictions of
# RESULTS "WGSL decode, session 14" over the engine's layers: a third with one 128-slot
# tile per item, most with two, a few with three; base attention ~22.4 us + merge ~4.2):
#   k:    attention -0.7..-1.2 us a layer -> device step -21..-36 us (0.98-0.99x),
#         8.2-8.3k tok/s; kv, kvs: -1.0..-1.8 -> -30..-54 us (0.97-0.98x);
#   nk:   -0.3..-1.2 (none on one-tile layers) -> 0.98-0.995x; at > 128 registers
#         (three workgroups an SM) the three-tile layers need two waves: slower;
#   kvnk: -1.7..-3.3 -> device step 1.81-1.86 ms, 8.3-8.6k tok/s, roofline 13.2-13.6%
#         (still far from 25%: the step's other 1.1 ms are the products and the head);
#   fused: as session 13, attention 28.7-29.0 us with no merge, the step +70..+100 us
#         (it checks that the engine option reproduces the build-time switch).
#   A form that wins in the bench but not here points at what session 13 suspected for
#   the fused merge: the step runs 30 different decode binaries back to back.
# Device: `run` tool, command "bash .dev-s15-engine/step-ab.sh", carry [".dev-s15-engine"]
# (filled here by benches/wgpu-h200/s14/pack-engine.sh), timeout_s 280. Total <= END
# seconds (default 240): each run is skipped once the call has used END - 30 s. A first
# run per form checks parity against the CPU (24 tokens, on NVIDIA's compiler: lavapipe
# checked every form, tests/model_gpu.rs) and compiles its 30 decode pipelines cold.
# The 14 runs (~15-20 s each) may not all fit 240 s: FORMS="k kv kvs" and then
# FORMS="nk kvnk fused" as two calls covers all (base runs in both).
# Smoke test on lavapipe (how it was checked here): BIN=target/release/examples/
# wgpu_products_engine ROWS=1 PROMPT=64 FORMS=kv CAP1=300 CAP2=300 END=1200
# MOA_WGPU_WARM=0 bash benches/wgpu-h200/s14/step-ab.sh
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-240}
FORMS=${FORMS:-k kv kvs nk kvnk fused}
R=${OUT:-/tmp}/step-ab; mkdir -p "$R"
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
BIN=${BIN:-}
if [ -z "$BIN" ]; then
  gunzip -c "$D/wgpu_products_engine.gz" > /tmp/wpe; chmod +x /tmp/wpe; BIN=/tmp/wpe
  for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export MOA_WGPU_COOP_ATTN=0
ROWS=${ROWS:-16}; PROMPT=${PROMPT:-4096}
A="--like smollm2-135m --rows $ROWS --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml --prompt $PROMPT"
env_of() {
  case $1 in
    base) echo "" ;;
    k) echo "MOA_WGSL_ITEM_LOADS=k" ;;
    kv) echo "MOA_WGSL_ITEM_LOADS=kv" ;;
    kvs) echo "MOA_WGSL_ITEM_LOADS=kv-shared" ;;
    nk) echo "MOA_WGSL_NEXT_K=1" ;;
    kvnk) echo "MOA_WGSL_ITEM_LOADS=kv MOA_WGSL_NEXT_K=1" ;;
    fused) echo "MOA_WGSL_FUSED_MERGE=1" ;;
    *) echo "unknown form $1" >&2; return 1 ;;
  esac
}
# run NAME FORM PARITY CAP: one process, its output in $R/NAME.txt.
run() { local name=$1 form=$2 par=$3 cap=$4 vars
  vars=$(env_of "$form") || return
  left $(( END - 30 )) || { el "skip $name (time)"; return; }
  el "== $name ($form: ${vars:-defaults})"
  env $vars timeout "$cap" "$BIN" $A --parity "$par" > "$R/$name.txt" 2>&1
  el "$name rc=$?"
}
order="base $FORMS"
for f in $order; do run "${f}1" "$f" 24 "${CAP1:-45}"; done
for f in $order; do run "${f}2" "$f" 0 "${CAP2:-25}"; done
# Summary: per run tok/s, wall ms/step, device step us, attention and merge us a layer
# (the profile's us/dispatch: one dispatch a layer), parity, and the tuning the load line
# names (so a variable the binary did not read shows as "default").
printf "%-7s %8s %8s %9s %9s %7s %-24s %s\n" run tok/s ms/step dev_us attn_us merge_us parity tuning
for r in 1 2; do for f in $order; do t=$R/$f$r.txt; [ -f "$t" ] || continue
  tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
  ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
  us() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
  per() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
  par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
  arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
  tun=$(grep -o -E "WGSL attention tuning: [^;(]*" "$t" | cut -d: -f2- | sed -E 's/, /,/g; s/ //g')
  printf "%-7s %8s %8s %9s %9s %7s %-24s %s\n" "$f$r" "${tok:--}" "${ms:--}" "$(us step)" \
    "$(per attention)" "$(per merge)" "${par:+$par,$arg}" "${tun:-default}"
  grep -h -o -E "(panicked[^;]*|wgpu_products_engine: .*)" "$t" | head -2
done; done
el done
