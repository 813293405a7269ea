#!/bin/bash
# Lead's check of session 16's merged main (3e19425 + the lead's fixes) on the H200 in one
# call (≈ 280 s of command; timeout_s 330).
#  1. wgpu engine decode step, SmolLM2 shape (random weights, seed 7), 16 x 4096, moa-50,
#     64 greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0: the merged main twice, the
#     first with parity against the CPU (no old binary: the 64 MiB carry limit; s16-wgpu
#     ran main's side by side). Prediction: what s16-wgpu measured, 1.81-1.85 ms.
#  2. tests/model_gpu.rs (merged release test binary) on the H200's Vulkan adapter.
#  3. tests/cuda_engine.rs on the H200 (the engine's prefill cache write changed in
#     s16-prefill), skipping the SmolLM2 test that needs the network.
#  4. The CUDA engine end to end, Llama-2-7B shape (random weights), the upstream Vicuna-7B
#     plan, 16 rows x 4096, 10 new tokens: `moa bench` of the merged main (new) against
#     session 15's main 893156f (old), new/old/new/old. Predictions: prefill 16 x 4096 goes
#     from ≈ 1.85 s to ≈ 1.6 s (s16-prefill's cache write, 1.90 -> 0.42 ms a layer per 16k
#     tokens: ≈ 0.19 s over 64k tokens and 32 layers, plus the V pre-pass's ≈ 0.05 ms a
#     layer a pass); decode step unchanged within 1% (s16-decode's `q` is GQA only; Vicuna
#     is MHA).
# Fill the carry folder here (bash benches/lead-h200/s16/pack-closing.sh .dev-s16-lead
# OLD_WPE), then: run carry [".dev-s16-lead"], command `bash .dev-s16-lead/closing.sh`.
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/lead; mkdir -p "$R"
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
for b in wpe-new model_gpu cuda_engine moa-new moa-old; do gunzip -c "$D/$b.gz" > /tmp/$b; chmod +x /tmp/$b; done
# The test binaries find plans and fixtures under the folder they were built in
# (CARGO_MANIFEST_DIR, /work/main when packed there): point it at this checkout.
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml"
run() { local name=$1 bin=$2 prompt=$3 par=$4 cap=$5; left 100 || { el "skip $name"; return; }; el "== $name"
  RUST_BACKTRACE=1 timeout "$cap" "$bin" $A --prompt "$prompt" --parity "$par" 2>&1 | grep -v XDG > "$R/$name.txt"; el "$name rc=${PIPESTATUS[0]}"; }
run new1 /tmp/wpe-new 4096 24 45
grep -q "no wgpu adapter" "$R/new1.txt" && cat "$R/new1.txt"
run new2 /tmp/wpe-new 4096 0 25
for f in new1 old1 new2 old2; do [ -f "$R/$f.txt" ] || continue; echo "== $f"
  grep -h -o -E "(panicked[^;]*|is not a value[^;]*|decode: 63 steps x 16 rows[^;]*tok/s|max .logit err. [0-9.]+|argmax equal [0-9/]*)" "$R/$f.txt" | tr '\n' ' '; echo
  grep -h -E "^decode:|qkv:|attention:|merge:|out:|gate_up:|down:|head:|step:" "$R/$f.txt" | sed -E 's/ +/ /g' | cut -c1-110
done
el "wgpu step done"
if left 160; then timeout 100 /tmp/model_gpu --test-threads 1 > "$R/model_gpu.txt" 2>&1
  echo "model_gpu rc=$?"; grep -E "^test |test result|panicked" "$R/model_gpu.txt" | tail -30; fi
el "model_gpu done"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
if left 200; then timeout 40 /tmp/cuda_engine --test-threads 1 --skip real_smollm2 > "$R/engine-tests.txt" 2>&1
  grep -E "^test |test result" "$R/engine-tests.txt" | tail -16; fi
el "engine tests done"
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* | head -1); ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
V7=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
for r in new1 old1 new2 old2; do left 300 || { el "skip bench $r"; continue; }
  b=/tmp/moa-${r%?}; el "bench $r"
  MOA_CUDA_CACHE=/tmp/cc-${r%?} timeout 60 $b bench --like llama-2-7b --plan $V7 --prompt 4096 --batch 16 \
    --new 10 --json $R/bench-$r.jsonl > $R/bench-$r.md 2>&1; el "bench $r rc=$?"; grep -E "^\| (dense|lmsys)" $R/bench-$r.md
done
el done
