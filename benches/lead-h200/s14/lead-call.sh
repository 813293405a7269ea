#!/bin/bash
# Lead call prepared in session 14 (no GPU that session: NOT YET RUN). Checks session 14's
# merged main on the H200 in one call (≈ 200 s of command; timeout_s 260):
#  1. wgpu engine decode step, SmolLM2 shape (random weights, seed 7), 16 x 4096, moa-50,
#     64 greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0: `old` = session 13's main
#     (62d2be4), `new` = session 14's merged main, new/old/new/old one process each, the
#     first new one with parity against the CPU. Session 14 deleted four matrix-unit
#     shader paths (MOA_WGPU_COOP_XPAD=0, _XSTAGE=0, _VSTORE=0, _EARLY=0; their code in
#     coop_matvec.wgsl / coop_head.wgsl) and moved every setting into typed options,
#     checked only by naga + SPIR-V here (lavapipe has no cooperative matrices): the
#     defaults' parity and step time must equal old's (prediction: within the A/A noise,
#     1.89-1.91 ms a step, 8.1k tok/s).
#  2. The opt-in matrix-unit products that remain at 16 x 512 with parity:
#     MOA_WGPU_COOP_DECODE=1 (output product on matrix units) and MOA_WGPU_COOP_QKV=1.
#  3. tests/model_gpu.rs (merged release test binary) on the H200's Vulkan adapter: every
#     engine option set in code against the CPU reference (the test s14-knobs added runs
#     on lavapipe; here the matrix-unit paths run too).
#  4. tests/cuda_engine.rs (MOA_CUBIN_DIR is now checked; the CUDA kernels are unchanged
#     since session 13), skipping the SmolLM2 test that needs the network.
# Fill the carry folder on the build machine (bash benches/lead-h200/s14/pack-lead.sh
# .dev-s15-lead OLD_WPE), then: run carry [".dev-s15-lead"], command
# `bash .dev-s15-lead/lead-call.sh`, timeout_s 260.
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/lead; mkdir -p "$R"
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
for b in wpe-old wpe-new model_gpu cuda_engine; do gunzip -c "$D/$b.gz" > /tmp/$b; chmod +x /tmp/$b; done
# The test binaries find plans and fixtures under the folder they were built in
# (CARGO_MANIFEST_DIR, /work/main when packed there): point it at this checkout.
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml"
run() { local name=$1 bin=$2 prompt=$3 par=$4 cap=$5; left 150 || { el "skip $name"; return; }; el "== $name"
  RUST_BACKTRACE=1 timeout "$cap" "$bin" $A --prompt "$prompt" --parity "$par" 2>&1 | grep -v XDG > "$R/$name.txt"; el "$name rc=${PIPESTATUS[0]}"; }
run new1 /tmp/wpe-new 4096 24 45
grep -q "no wgpu adapter" "$R/new1.txt" && cat "$R/new1.txt"
run old1 /tmp/wpe-old 4096 0 25
run new2 /tmp/wpe-new 4096 0 25
run old2 /tmp/wpe-old 4096 0 25
MOA_WGPU_COOP_DECODE=1 run cd512 /tmp/wpe-new 512 24 20
MOA_WGPU_COOP_QKV=1 run q512 /tmp/wpe-new 512 24 20
run n512 /tmp/wpe-new 512 0 15
for f in new1 old1 new2 old2 cd512 q512 n512; do [ -f "$R/$f.txt" ] || continue; echo "== $f"
  grep -h -o -E "(panicked[^;]*|is not a value[^;]*|is ignored[^;]*|decode: 63 steps x 16 rows[^;]*tok/s|max .logit err. [0-9.]+|argmax equal [0-9/]*|QKV products[^;]*|products failed[^;]*)" "$R/$f.txt" | tr '\n' ' '; echo
  grep -h -E "^decode:|qkv:|attention:|merge:|out:|gate_up:|down:|head:|step:" "$R/$f.txt" | sed -E 's/ +/ /g' | cut -c1-110
done
el "wgpu step done"
if left 200; then timeout 60 /tmp/model_gpu --test-threads 1 > "$R/model_gpu.txt" 2>&1
  echo "model_gpu rc=$?"; grep -E "^test |test result|panicked" "$R/model_gpu.txt" | tail -30; fi
el "model_gpu done"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
if left 230; then timeout 30 /tmp/cuda_engine --test-threads 1 --skip real_smollm2 > "$R/engine-tests.txt" 2>&1
  grep -E "^test |test result" "$R/engine-tests.txt" | tail -14; fi
el done
