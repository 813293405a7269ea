#!/bin/bash
# Session 15, branch s15-wgpu: one H200 call (cap 260 s with the machine's start; END
# below bounds the command at ~165 s, timeout_s 185). Carry `.dev-s15-wgpu` (filled by
# benches/wgpu-h200/s15/pack.sh): model_gpu-old.gz (release tests/model_gpu.rs of main
# fed77e2, the lead's), model_gpu-new.gz (this branch: the fixed test), wpe.gz (release
# examples/wgpu_products_engine of fed77e2, whose src this branch has not changed), gl/.
#
# 1. The failing test, issue 12 (lead call s15: FAILED on the H200, message cut by the
#    suite's 60 s cap). Cause read from the code and reproduced on lavapipe with
#    MOA_WGPU_SPLIT_K=1 ("f32=false row 0: chunked vs one pass 0.00015"): GPU adapters
#    default to split-K products, so the chunks of <= 32 tokens take matvec_sg.wgsl while
#    the unlimited 97-token pass takes the tiled / matrix-unit product (f16 operands on
#    the H200): different rounding, against a 1e-5 bound. Lavapipe (a CPU adapter)
#    defaults to split-K off, so CI never ran that pair.
#    PREDICTION old binary: fails at "f32=false row r: chunked vs one pass" with 1e-3..1e-2
#    (the one pass's matrix units round activations to f16); f32 passes (< 1e-5).
#    PREDICTION new test (both split-K settings): passes with MOA_WGPU_COOP_ATTN=0 and
#    without it; split-K off agrees to < 1e-5 (same kernels; the matrix-unit product's
#    result does not depend on a token's place in its 64-row tile).
# 2. The four model_gpu tests the lead's 60 s cap never reached.
# 3. Decode forms in the engine step (SmolLM2 shape, 16 x 4096, moa-50, 64 tokens,
#    --profile 5, MOA_WGPU_COOP_ATTN=0), A/B/A/B one process each, no parity (each form
#    matched the CPU on lavapipe and in the lead's kernel check here).
#    PREDICTION from the registers (layer 6: base 102 -> 5 workgroups of 128 an SM; kv 110
#    -> 4; nk and kv-nk 162 -> 3, i.e. 396 resident against 384-448 items on the 3-tile
#    layers): kv like k (lost 1.02x): attention +0.5..+1.5 us a layer; nk and kvnk
#    +3..+8 us a layer, step 1.05-1.12x. If so, every item-load / next-K form is deleted.
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-165}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=$OUT/s15; mkdir -p "$R"
for b in model_gpu-old model_gpu-new wpe; do gunzip -c "$D/$b.gz" > /tmp/$b; chmod +x /tmp/$b; done
# The test binaries write their fixtures under the folder they were built in.
for p in /work/main /work/wt-s15-wgpu; do [ -e $p ] || { mkdir -p /work && ln -s "$PWD" $p; }; done
for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
T=prefill_over_the_binding_limit_runs_in_row_groups_and_token_chunks
tst() { local name=$1 cap=$2; shift 2; left $(( END - cap / 2 )) || { el "skip $name"; return; }
  el "== $name"; timeout "$cap" "$@" > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -E "^test |test result|panicked|chunked vs|max \|err\|" "$R/$name.txt" | head -12; }
MOA_WGPU_COOP_ATTN=0 tst old-noattn 30 /tmp/model_gpu-old --exact $T --nocapture
MOA_WGPU_COOP_ATTN=0 tst new-noattn 40 /tmp/model_gpu-new --exact $T --nocapture
tst new-attn 40 /tmp/model_gpu-new --exact $T --nocapture
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml --prompt 4096 --parity 0"
env_of() { case $1 in base) echo "";; kv) echo "MOA_WGSL_ITEM_LOADS=kv";; nk) echo "MOA_WGSL_NEXT_K=1";;
  kvnk) echo "MOA_WGSL_ITEM_LOADS=kv MOA_WGSL_NEXT_K=1";; esac; }
step() { local name=$1 form=$2; left $(( END - 15 )) || { el "skip $name"; return; }
  el "== $name"; env $(env_of $form) timeout 22 /tmp/wpe $A > "$R/$name.txt" 2>&1; el "$name rc=$?"; }
for f in base kv nk kvnk; do step ${f}1 $f; done
tst rest 45 /tmp/model_gpu-new --test-threads 1 --exact subgroup_products_with_a_partial_last_trip_match_the_cpu_reference swiglu_in_the_gate_up_epilogue_matches_the_cpu_reference tiny_model_matches_cpu_reference_dense_and_sparse weights_over_the_binding_limit_are_split_by_rows
for f in base kv nk kvnk; do step ${f}2 $f; done
printf "%-7s %6s %8s %8s %8s %7s %s\n" run tok/s ms/step dev_us attn_us merge_us tuning
for r in 1 2; do for f in base kv nk kvnk; do t=$R/$f$r.txt; [ -f "$t" ] || continue
  tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
  ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
  us() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
  per() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
  tun=$(grep -o -E "WGSL attention tuning: [^;(]*" "$t" | cut -d: -f2- | sed -E 's/ //g')
  printf "%-7s %6s %8s %8s %8s %7s %s\n" $f$r "${tok:--}" "${ms:--}" "$(us step)" "$(per attention)" "$(per merge)" "${tun:-default}"
  grep -h -o -E "panicked[^;]*" "$t" | head -1; done; done
el done
