#!/bin/bash
# Session 11, lead call: the merged main (2ecc823 + s11-plans, s11-decode, s11-wgpu,
# s11-wgsl, s11-prefill) on the H200, one call.
#  1. Checks of the merged CUDA kernels (s11-prefill's `nc` prefill defaults + s11-decode's
#     packed GQA work lists), merged `cuda_check` compiling through the device's NVRTC:
#     fixtures (f32/f16/bf16), Llama-3-8B bf16, Vicuna-7B f16, the `_vfix` path (Llama bf16,
#     V x 2^[16,0,-13,0]), compute-sanitizer memcheck + racecheck on fixture-gqa bf16, then
#     tests/cuda_engine.rs (merged release test binary).
#  2. wgpu engine decode step, SmolLM2 shape (random weights, seed 7), 16 x 4096, moa-50,
#     --profile 5, MOA_WGPU_COOP_ATTN=0: `old` = session 10's main (2ecc823), `new` = the
#     merged main (s11-wgsl's decode pipelines and chunk model, s11-wgpu's LM head on
#     matrix units), old, new, old, new (A/B/A/B), one process each.
# Carry .dev-s11-lead: wpe-old.gz, wpe-new.gz, cuda_check.gz, cuda_engine.gz, gl/*.deb.
D=$PWD/.dev-s11-lead
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/lead; mkdir -p $R
left() { [ $(( $(date +%s) - s )) -lt $1 ]; }
for b in wpe-old wpe-new cuda_check cuda_engine; do gunzip -c $D/$b.gz > /tmp/$b; chmod +x /tmp/$b; done
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
B=/tmp/cuda_check
el "== checks"
{
  echo "== fixtures"; timeout 45 $B plans/fixture-mha.toml plans/fixture-gqa.toml 2>&1 | tail -4
  echo "== llama bf16"; timeout 60 $B --upstream $L --kv-heads 8 --dtypes bf16 2>&1 | tail -2
  echo "== vicuna f16"; timeout 60 $B --upstream $V --kv-heads 32 --dtypes f16 2>&1 | tail -2
  echo "== llama bf16 vfix"; timeout 40 $B --upstream $L --kv-heads 8 --dtypes bf16 --v-exponents 16,0,-13,0 2>&1 | tail -2
  for tool in memcheck racecheck; do echo "== $tool gqa bf16"
    timeout 40 compute-sanitizer --tool $tool $B plans/fixture-gqa.toml --dtypes bf16 2>&1 | tail -3; done
} > $R/checks.txt 2>&1
cat $R/checks.txt; el "checks done"
timeout 120 /tmp/cuda_engine --test-threads 1 > $R/engine-tests.txt 2>&1
grep -E "^test |test result" $R/engine-tests.txt | tail -16; el "engine tests done"
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --prompt 4096 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml"
run() { local name=$1 bin=$2 par=$3; left 330 || { el "skip $name"; return; }; el "== $name"
  timeout 40 $bin $A --parity $par 2>&1 | grep -v XDG > $R/$name.txt; el "$name rc=${PIPESTATUS[0]}"; }
run old1 /tmp/wpe-old 0
run new1 /tmp/wpe-new 24
run old2 /tmp/wpe-old 0
run new2 /tmp/wpe-new 0
grep -H -E "^decode:|parity|attention:|merge:|head:|step:" $R/old*.txt $R/new*.txt | cut -c1-220
el done
