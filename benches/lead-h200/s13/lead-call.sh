#!/bin/bash
# Session 13, lead call: the merged main (43a6fcc + s13-wgpu, s13-decode, s13-prefill,
# s13-fresh, s13-wgsl) on the H200, one call.
#  1. wgpu engine decode step, SmolLM2 shape (random weights, seed 7), 16 x 4096, moa-50,
#     64 greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0: `old` = session 12's main
#     (43a6fcc), `new` = the merged main (s13-wgsl's fused merge, s13-wgpu's matrix-unit
#     gate/up with the early walk, padded rows, vector stores), old, new, old, new
#     (A/B/A/B), one process each, the first new one with parity against the CPU; then at
#     16 x 512 the opt-in QKV product on matrix units (MOA_WGPU_COOP_QKV=1, never run
#     before: parity + its start-up check) against the new defaults.
#  2. Checks of the merged CUDA kernels through the device's NVRTC (merged `cuda_check`):
#     fixtures (f32/f16/bf16), Llama-3-8B and Vicuna-7B upstream plans in bf16 (s13-prefill's
#     `a` default) and f16 (unchanged since session 12, but the `4x3ems` decode on Llama
#     was never run), compute-sanitizer memcheck + racecheck on fixture-gqa bf16, then
#     tests/cuda_engine.rs (merged release test binary; the SmolLM2 test needs the network).
# Carry .dev-s13-lead: wpe-old.gz, wpe-new.gz, cuda_check.gz, cuda_engine.gz, gl/*.deb.
D=$PWD/.dev-s13-lead
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/lead; mkdir -p $R
left() { [ $(( $(date +%s) - s )) -lt $1 ]; }
for b in wpe-old wpe-new cuda_check cuda_engine; do gunzip -c $D/$b.gz > /tmp/$b; chmod +x /tmp/$b; done
for f in $D/gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml"
run() { local name=$1 bin=$2 prompt=$3 par=$4 cap=$5; left 150 || { el "skip $name"; return; }; el "== $name"
  RUST_BACKTRACE=1 timeout $cap $bin $A --prompt $prompt --parity $par 2>&1 | grep -v XDG > $R/$name.txt; el "$name rc=${PIPESTATUS[0]}"; }
run new1 /tmp/wpe-new 4096 24 45
grep -q "no wgpu adapter" $R/new1.txt && cat $R/new1.txt
run old1 /tmp/wpe-old 4096 0 25
run new2 /tmp/wpe-new 4096 0 25
run old2 /tmp/wpe-old 4096 0 25
MOA_WGPU_COOP_QKV=1 run q1 /tmp/wpe-new 512 24 20
run n512 /tmp/wpe-new 512 0 15
MOA_WGPU_COOP_QKV=1 run q2 /tmp/wpe-new 512 0 15
for f in new1 old1 new2 old2 q1 n512 q2; do [ -f $R/$f.txt ] || continue; echo "== $f"
  grep -h -o -E "(NVVM[^;]*|panicked[^;]*|decode: 63 steps x 16 rows[^;]*tok/s|max .logit err. [0-9.]+|argmax equal [0-9/]*|QKV products[^;]*|products failed[^;]*)" $R/$f.txt | tr '\n' ' '; echo
  grep -h -E "^decode:|qkv:|attention:|merge:|out:|gate_up:|down:|head:|step:" $R/$f.txt | sed -E 's/ +/ /g' | cut -c1-110
done
el "wgpu done"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
B=/tmp/cuda_check
chk() { local name=$1 until=$2 cap=$3; shift 3; left $until || { echo "== $name: skipped (time)"; return; }
  echo "== $name"; timeout $cap "$@" 2>&1 | tail -3; echo "rc=${PIPESTATUS[0]}"; }
{
  chk fixtures 400 45 $B plans/fixture-mha.toml plans/fixture-gqa.toml
  chk "llama bf16" 400 60 $B --upstream $L --kv-heads 8 --dtypes bf16
  chk "vicuna bf16" 400 60 $B --upstream $V --kv-heads 32 --dtypes bf16
  chk "llama f16" 400 55 $B --upstream $L --kv-heads 8 --dtypes f16
  chk "memcheck gqa bf16" 420 40 compute-sanitizer --tool memcheck $B plans/fixture-gqa.toml --dtypes bf16
  chk "racecheck gqa bf16" 420 40 compute-sanitizer --tool racecheck $B plans/fixture-gqa.toml --dtypes bf16
  chk "vicuna f16" 380 75 $B --upstream $V --kv-heads 32 --dtypes f16
} > $R/checks.txt 2>&1
cat $R/checks.txt; el "checks done"
if left 440; then timeout 80 /tmp/cuda_engine --test-threads 1 --skip real_smollm2 > $R/engine-tests.txt 2>&1
  grep -E "^test |test result" $R/engine-tests.txt | tail -14; fi
el done
