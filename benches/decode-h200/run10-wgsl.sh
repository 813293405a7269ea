#!/bin/bash
# Device call 10 (s8-wgsl): the WGSL decode on cooperative matrices (decode_coop.wgsl.j2)
# against the scalar decode (main's kernel, MOA_WGSL_DECODE=scalar, same binary) and a
# WGSL copy kernel, through Vulkan on the H200. First the check against the CPU reference
# with the matrix decode (f16; f32 and fixture-mha's head_dim 32 run the scalar one), then
# again with MOA_WGSL_RESCALE=0 (a rescale at every new maximum: the rare path exercised),
# and with MOA_WGSL_COOP_PREFETCH=0 (no software pipeline); Llama-3-8B and Vicuna-7B
# layers as in call 9, each list after a throwaway first configuration (layer 31): matrix
# decode, scalar decode, matrix decode without the pipeline; then chunk lengths. One call of <= END s, steps
# capped by `timeout` and by what is left; results packed into $OUT/results.tar.gz after
# each step. Carry folder: wgpu_decode_bench, wgsl-gqa-hd128.toml, .gl/ (Vulkan loader .debs).
# Run from the repository root: bash .dev-<branch>/run10-wgsl.sh
# At this call the matrix decode was the default where the adapter has the matrices; it
# is opt-in since (slower than the scalar decode here), hence the export below.
export MOA_WGSL_DECODE=coop
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-125}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r10; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
command -v nvidia-smi > /dev/null && ( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig ) > $R/vulkan-setup.txt 2>&1
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=$C/wgpu_decode_bench
short() { grep -v '^{' "$1" | grep -v "layer 31" | sed 's/ (N=[^)]*)//'; }

timeout $(cap 25) $B check plans/fixture-mha.toml plans/fixture-gqa.toml $C/wgsl-gqa-hd128.toml > $R/check.txt 2>&1
echo "check rc=$?" >> $R/check.txt
grep -E "decode runs|FAIL|pass|rc=" $R/check.txt | head -14
pack check

timeout $(cap 18) $B upstream $L 8 31,0,2,29 16,4 4096,16384 > $R/llama-coop.txt 2>&1
short $R/llama-coop.txt; pack llama-coop
MOA_WGSL_DECODE=scalar timeout $(cap 18) $B upstream $L 8 31,0,2,29 16,4 4096,16384 > $R/llama-scalar.txt 2>&1
short $R/llama-scalar.txt | grep -v copy; pack llama-scalar
timeout $(cap 14) $B upstream $V 32 31,0,27 16,4 4096,16384 > $R/vicuna-coop.txt 2>&1
short $R/vicuna-coop.txt; pack vicuna-coop
MOA_WGSL_DECODE=scalar timeout $(cap 14) $B upstream $V 32 31,0,27 16,4 4096,16384 > $R/vicuna-scalar.txt 2>&1
short $R/vicuna-scalar.txt | grep -v copy; pack vicuna-scalar

{ MOA_WGSL_RESCALE=0 timeout $(cap 12) $B check plans/fixture-gqa.toml $C/wgsl-gqa-hd128.toml; echo "rescale0 check rc=$?"
  MOA_WGSL_COOP_PREFETCH=0 timeout $(cap 12) $B check plans/fixture-gqa.toml $C/wgsl-gqa-hd128.toml; echo "noprefetch check rc=$?"; } > $R/check-variants.txt 2>&1
grep -E "decode runs|FAIL|pass|rc=" $R/check-variants.txt | head -12
pack check-variants

MOA_WGSL_COOP_PREFETCH=0 timeout $(cap 18) $B upstream $L 8 31,0,2,29 16,4 4096,16384 > $R/llama-coop-noprefetch.txt 2>&1
short $R/llama-coop-noprefetch.txt | grep -v copy; pack llama-coop-noprefetch

MOA_WGSL_CHUNKS=auto,128,512,2048 timeout $(cap 12) $B upstream $L 8 31,2 16,4 4096 > $R/llama-chunks.txt 2>&1
short $R/llama-chunks.txt | grep -v copy; pack llama-chunks
