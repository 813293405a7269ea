#!/bin/bash
# Device call 7 (s6-wgsl): the restructured WGSL decode (issue 8 item 3) on the H200
# through Vulkan, one call of <= 240 s, steps in priority order, each capped by `timeout`
# and by what is left of the call; results packed into $OUT/results.tar.gz after each
# step (the device tool returns few files); key lines printed to stdout.
#  1. wgpu_decode_bench check: the standard decode cases of runtime/cases.rs against the
#     CPU reference on the H200's Vulkan driver (f32 and f16; the host's chunks and
#     chunks of 1 and 3 tiles) for the two fixture plans and wgsl-gqa-hd128.toml (the
#     production shape: GQA group 4, head_dim 128, 16-byte f16 loads)
#  2. wgpu_decode_bench upstream (this branch's kernel): Llama-3-8B layers 0, 2, 29 and
#     Vicuna-7B layers 0, 27, B = 16 and 4, prompts 4k and 16k, against a WGSL copy
#     kernel on the same adapter (target: >= 70 % of the copy's rate)
#  3. the same with wgpu_decode_bench.base (the kernel of main at 67b6f44, as timed in
#     call 6 plus b48ee25's vec4 loads), side by side in this call; its first
#     configuration is a throwaway (that bench's warm-up artefact gave call 6 a
#     negative first time)
#  4. chunk-length sweep on Llama layer 0 and Vicuna layer 0 at B = 16 and 4, 16k:
#     MOA_WGSL_CHUNKS=auto,256,512,1024,2048,4096
# The carry folder (this script's folder) holds: wgpu_decode_bench (release build of
# this branch), wgpu_decode_bench.base (release build of 67b6f44), wgsl-gqa-hd128.toml
# and .gl/ (the Vulkan loader .debs, see .library/device/README.md). Rebuild both
# binaries before the call if the tree changed:
#   CARGO_TARGET_DIR=/work/rel-target cargo build --release --example wgpu_decode_bench
# Run from the repository root: bash .dev-<branch>/run7-wgsl.sh
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-230}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r7; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tar.gz -C $R .; }
nvidia-smi 2>/dev/null --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
# Only on the device (a dry run elsewhere must not unpack into /).
command -v nvidia-smi > /dev/null && ( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig ) > $R/vulkan-setup.txt 2>&1
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
HD128=$C/wgsl-gqa-hd128.toml
[ -f benches/decode-h200/wgsl-gqa-hd128.toml ] && HD128=benches/decode-h200/wgsl-gqa-hd128.toml

timeout $(cap 50) $C/wgpu_decode_bench check plans/fixture-mha.toml plans/fixture-gqa.toml $HD128 > $R/check.txt 2>&1
echo "check rc=$?" >> $R/check.txt
grep -E "adapter|decode runs|FAIL|pass|rc=|wgpu_decode_bench" $R/check.txt | head -20
pack check

{ timeout $(cap 50) $C/wgpu_decode_bench upstream $L 8 0,2,29 16,4 4096,16384
  timeout $(cap 40) $C/wgpu_decode_bench upstream $V 32 0,27 16,4 4096,16384; } > $R/wgpu-new.txt 2>&1
grep -v '^{' $R/wgpu-new.txt | head -40
pack new

# Base: a throwaway first configuration (layer 31 at B = 4, 4k), then the same list.
{ timeout $(cap 45) $C/wgpu_decode_bench.base upstream $L 8 31,0,2,29 16,4 4096,16384
  timeout $(cap 35) $C/wgpu_decode_bench.base upstream $V 32 31,0,27 16,4 4096,16384; } > $R/wgpu-base.txt 2>&1
grep -v '^{' $R/wgpu-base.txt | grep -v "layer 31" | head -40
pack base

{ MOA_WGSL_CHUNKS=auto,256,512,1024,2048,4096 timeout $(cap 30) $C/wgpu_decode_bench upstream $L 8 0 16,4 16384
  MOA_WGSL_CHUNKS=auto,256,512,1024,2048,4096 timeout $(cap 30) $C/wgpu_decode_bench upstream $V 32 0 16,4 16384; } > $R/wgpu-chunks.txt 2>&1
grep -v '^{' $R/wgpu-chunks.txt | grep -v copy | head -30
pack chunks
