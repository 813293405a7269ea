#!/bin/bash
# Device call 8 (s7-wgsl): the WGSL decode with the softmax computed once per (slot, head)
# (tile maxima by workgroup atomicMax, p shared through workgroup memory, P.V pure FMAs,
# heads unrolled into registers, 16 loads in flight) and the cheap merge (parallel first-
# item search, one online pass) on the H200 through Vulkan, one call of <= 180 s, steps
# in priority order, each capped by `timeout` and by what is left of the call; results
# packed into $OUT/results.tar.gz after each step; key lines printed to stdout.
#  1. wgpu_decode_bench check: the standard decode cases of runtime/cases.rs against the
#     CPU reference on the H200's Vulkan driver (f32 and f16; the host's chunks and
#     chunks of 1 and 3 tiles) for the two fixture plans and wgsl-gqa-hd128.toml
#  2. new kernel: Llama-3-8B layers 0, 2, 29 and Vicuna-7B layers 0, 27, B = 16 and 4,
#     prompts 4k and 16k, against a WGSL copy kernel on the same adapter (target: >= 70 %
#     of the copy's rate)
#  3. the same with wgpu_decode_bench.base (main at a95f0cf: the kernel timed as "new" in
#     call 7), side by side in this call, after a throwaway first configuration
#  4. where a small step's fixed time goes: MOA_WGSL_PARTS=step,decode,merge (the step,
#     the decode dispatch alone, the merge dispatch alone) on Llama layers 29 and 0 and
#     Vicuna layer 27 at B = 4 and 16, 4k; then MOA_WGSL_CHUNKS=auto,256,512,1024 on
#     Llama layer 0 and Vicuna layer 0 at B = 4, 4k
# The carry folder (this script's folder) holds: wgpu_decode_bench (release build of
# this branch), wgpu_decode_bench.base (release build of a95f0cf), wgsl-gqa-hd128.toml
# and .gl/ (the Vulkan loader .debs, see .library/device/README.md). Build:
#   CARGO_TARGET_DIR=/work/rel-target cargo build --release --example wgpu_decode_bench
# Run from the repository root: bash .dev-<branch>/run8-wgsl.sh
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-170}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r8; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
nvidia-smi 2>/dev/null --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
# Only on the device (a dry run elsewhere must not unpack into /).
command -v nvidia-smi > /dev/null && ( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig ) > $R/vulkan-setup.txt 2>&1
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
HD128=$C/wgsl-gqa-hd128.toml
[ -f benches/decode-h200/wgsl-gqa-hd128.toml ] && HD128=benches/decode-h200/wgsl-gqa-hd128.toml

timeout $(cap 40) $C/wgpu_decode_bench check plans/fixture-mha.toml plans/fixture-gqa.toml $HD128 > $R/check.txt 2>&1
echo "check rc=$?" >> $R/check.txt
grep -E "adapter|decode runs|FAIL|pass|rc=|wgpu_decode_bench" $R/check.txt | head -20
pack check

{ timeout $(cap 40) $C/wgpu_decode_bench upstream $L 8 0,2,29 16,4 4096,16384
  timeout $(cap 35) $C/wgpu_decode_bench upstream $V 32 0,27 16,4 4096,16384; } > $R/wgpu-new.txt 2>&1
grep -v '^{' $R/wgpu-new.txt | sed 's/ (N=[^)]*)//' | head -40
pack new

# Base: a throwaway first configuration (layer 31 at B = 4, 4k), then the same list.
{ timeout $(cap 40) $C/wgpu_decode_bench.base upstream $L 8 31,0,2,29 16,4 4096,16384
  timeout $(cap 35) $C/wgpu_decode_bench.base upstream $V 32 31,0,27 16,4 4096,16384; } > $R/wgpu-base.txt 2>&1
grep -v '^{' $R/wgpu-base.txt | grep -v "layer 31" | sed 's/ (N=[^)]*)//' | head -40
pack base

{ MOA_WGSL_PARTS=step,decode,merge timeout $(cap 25) $C/wgpu_decode_bench upstream $L 8 29,0 4,16 4096
  MOA_WGSL_PARTS=step,decode,merge timeout $(cap 15) $C/wgpu_decode_bench upstream $V 32 27 4,16 4096; } > $R/wgpu-parts.txt 2>&1
grep -v '^{' $R/wgpu-parts.txt | grep -v copy | sed 's/ (N=[^)]*)//' | head -30
pack parts

{ MOA_WGSL_CHUNKS=auto,256,512,1024 timeout $(cap 15) $C/wgpu_decode_bench upstream $L 8 0 4 4096
  MOA_WGSL_CHUNKS=auto,256,512,1024 timeout $(cap 15) $C/wgpu_decode_bench upstream $V 32 0 4 4096; } > $R/wgpu-chunks.txt 2>&1
grep -v '^{' $R/wgpu-chunks.txt | grep -v copy | sed 's/ (N=[^)]*)//' | head -30
pack chunks
