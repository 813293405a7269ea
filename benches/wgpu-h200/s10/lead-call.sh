#!/bin/bash
# Session 10, lead call: the merged main (8fef445 + helpers' four branches) on the H200.
#  1. wgpu engine decode step, SmolLM2 shape (random weights, seed 7), 16 x 4096, moa-50,
#     --profile 5: `old` = s10-wgpu's binary (WGSL decode before s10-wgsl's defaults),
#     `new` = merged main's binary (paired end-of-chunk sums, GQA chunk model at 264),
#     old, new, old again (A/B/A), one process each.
#  2. s10-wgsl's prepared run15 (WGSL decode lists against a copy kernel), END=100 s.
#  3. Checks of the merged CUDA kernels (s10-prefill's 3x64 default + s10-decode's 4x3em):
#     cuda_check fixtures (f32/f16/bf16), both upstream plans bf16+f16; compute-sanitizer
#     memcheck + racecheck on fixture-gqa bf16 and racecheck on fixture-mha bf16.
# Carry: .dev-s10-lead (wpe.gz, cuda_check.gz, this script), .dev-s10-wgpu (old wpe.gz),
# .dev-s10-wgsl (run15, its bench, Vulkan/glvnd debs).
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
R=$OUT/lead; mkdir -p $R
for f in .dev-s10-wgsl/.gl/*.deb; do dpkg -x $f /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
gunzip -c .dev-s10-wgpu/wpe.gz > /tmp/wpe-old; gunzip -c .dev-s10-lead/wpe.gz > /tmp/wpe-new
gunzip -c .dev-s10-lead/cuda_check.gz > /tmp/cuda_check; chmod +x /tmp/wpe-old /tmp/wpe-new /tmp/cuda_check
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --prompt 4096 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml"
el setup
run() { local name=$1 bin=$2 par=$3; el "== $name"
  timeout 40 $bin $A --parity $par 2>&1 | grep -v XDG > $R/$name.txt; el "$name rc=${PIPESTATUS[0]}"; }
run old1 /tmp/wpe-old 0
run new1 /tmp/wpe-new 24
run old2 /tmp/wpe-old 0
run new2 /tmp/wpe-new 0
grep -H -E "^decode:|parity|attention:|merge:|step:" $R/old1.txt $R/new1.txt $R/old2.txt $R/new2.txt | cut -c1-200
el "== run15"
mkdir -p $OUT/wgsl; OUT=$OUT/wgsl END=100 bash .dev-s10-wgsl/run15-wgsl.sh > $R/run15.log 2>&1; tail -30 $R/run15.log
el "== checks"
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
B=/tmp/cuda_check
( timeout 45 $B plans/fixture-mha.toml plans/fixture-gqa.toml > $R/check-fixtures.txt 2>&1; echo "rc=$?" >> $R/check-fixtures.txt ) &
( timeout 60 $B --upstream $L --kv-heads 8 --dtypes bf16,f16 > $R/check-llama.txt 2>&1; echo "rc=$?" >> $R/check-llama.txt ) &
( timeout 60 $B --upstream $V --kv-heads 32 --dtypes bf16,f16 > $R/check-vicuna.txt 2>&1; echo "rc=$?" >> $R/check-vicuna.txt ) &
( for tool in memcheck racecheck; do echo "== $tool gqa"; timeout 40 compute-sanitizer --tool $tool $B plans/fixture-gqa.toml --dtypes bf16 2>&1 | tail -8; done
  echo "== racecheck mha"; timeout 40 compute-sanitizer --tool racecheck --racecheck-report all $B plans/fixture-mha.toml --dtypes bf16 2>&1 | tail -12 ) > $R/sanitizer.txt 2>&1 &
wait
for f in check-fixtures check-llama check-vicuna; do echo "== $f"; grep -E "pass|FAIL|fail|error|rc=" $R/$f.txt | tail -6; done
cat $R/sanitizer.txt | grep -E "==|SUMMARY|ERROR|Warning|hazard" | head -20
el done
