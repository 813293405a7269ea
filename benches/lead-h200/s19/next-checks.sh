#!/bin/bash
# The first device call of session 20, prepared by session 19's lead (whose device time
# ran out before merged main had its closing call). Merged main (ab0dbd0 or later), one
# call: END=170 s of command (run tool timeout_s 200). Carry DIR (benches/lead-h200/s19/
# pack-next.sh): release cuda_check, the moa CLI, tests/cuda_engine.rs and
# tests/model_gpu.rs binaries, cuda_cubins-built cubins (Llama-3-8B and Vicuna-7B bf16 with
# main's defaults), the Vulkan .debs.
# PREDICTIONS (before the call):
#  1. tests/cuda_engine.rs 12/12 (real_smollm2 skipped): the bf16 prefill's pre-pass now
#     comes from the manifest's abi.prepass (s19-fresh), same kernels as before.
#  2. cuda_check bf16 with lean block ends `b` the default at head_dim 128: Llama-3-8B
#     2.063e-3, Vicuna-7B 2.075e-3 (s19-prefill measured `b` named; outputs identical).
#  3. moa bench --check-ops --checks-only: every op passes, with the two top-k cases of
#     moa_sample against ops::sample_ref (never run on a GPU).
#  4. tests/model_gpu.rs on the H200's Vulkan with the flat decode on subgroups as the
#     default (s19-wgsl): 27 passed, 1 ignored, as session 19's call 3 with the old default.
#   bash DIR/next-checks.sh
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=$OUT/lead; mkdir -p "$R"
s=$(date +%s); END=${END:-170}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "$OUT/lead.tgz" -C "$R" .; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
cd "$D" || exit 1
mkdir -p cubins && tar xJf cubins.tar.xz -C cubins
for b in cuda_check cuda_engine model_gpu moa; do gunzip -f $b.gz; chmod +x $b; done
el "start, $(ls cubins | wc -l) cubins"
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
# --- 1, 2, 3 side by side (one GPU, small kernels: they share it)
( cd "$ROOT" && timeout 110 "$D/cuda_engine" --test-threads 1 --skip real_smollm2 > "$R/engine.txt" 2>&1; echo "rc=$?" >> "$R/engine.txt" ) &
( cd "$ROOT" && MOA_CUBIN_DIR=$D/cubins timeout 70 "$D/cuda_check" --upstream $L --kv-heads 8 --dtypes bf16 > "$R/check_llama.txt" 2>&1; echo "rc=$?" >> "$R/check_llama.txt"
  MOA_CUBIN_DIR=$D/cubins timeout 70 "$D/cuda_check" --upstream $V --kv-heads 32 --dtypes bf16 > "$R/check_vicuna.txt" 2>&1; echo "rc=$?" >> "$R/check_vicuna.txt" ) &
( cd "$ROOT" && timeout 80 "$D/moa" bench --check-ops --checks-only --plan plans/smollm2-135m-moa-50.toml > "$R/ops.txt" 2>&1; echo "rc=$?" >> "$R/ops.txt" ) &
wait
el "engine, checks, ops"; grep -E "^test result|FAILED|panicked|^rc=" "$R/engine.txt"; tail -3 "$R"/check_*.txt; tail -8 "$R/ops.txt"; save
# --- 4. model_gpu on Vulkan
if left 40; then
  ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
  T=$(( END - $(date +%s) + s - 5 ))
  ( cd "$ROOT" && timeout $T "$D/model_gpu" --test-threads 2 > "$R/model_gpu.txt" 2>&1; echo "rc=$?" >> "$R/model_gpu.txt" )
  el "model_gpu"; grep -E "^test result|FAILED|panicked|rc=" "$R/model_gpu.txt"
fi
el done; save
