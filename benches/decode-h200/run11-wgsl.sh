#!/bin/bash
# Device call 11 (s8-wgsl): call 10 found the matrix decode that loads its matrices straight
# from the cache slower than the scalar decode (and its pipelined form's first pipeline
# build over 18 s). This call checks and times the staged form (MOA_WGSL_COOP_STAGED=1:
# K and V read with 16-byte loads one tile ahead into workgroup memory, one-pass softmax)
# against the scalar decode and the direct form, side by side, with longer caps for the
# first pipeline builds. Same binary for all (WgslTuning chosen from the environment).
# One call of <= END s; results packed into $OUT/results.tar.gz after each step.
# Carry folder: wgpu_decode_bench, wgsl-gqa-hd128.toml, .gl/ (Vulkan loader .debs).
# Run from the repository root: bash .dev-<branch>/run11-wgsl.sh
# At this call the matrix decode was the default where the adapter has the matrices; it
# is opt-in since (slower than the scalar decode here), hence the export below.
# The staged form (MOA_WGSL_COOP_STAGED=1) exists only at ba3fb4c: it failed its check and
# was removed after this call; build the binary from ba3fb4c to rerun this script.
export MOA_WGSL_DECODE=coop
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-115}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r11; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
command -v nvidia-smi > /dev/null && ( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig ) > $R/vulkan-setup.txt 2>&1
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=$C/wgpu_decode_bench
short() { grep -v '^{' "$1" | grep -v "layer 31" | sed 's/ (N=[^)]*)//'; }

MOA_WGSL_COOP_STAGED=1 timeout $(cap 20) $B check plans/fixture-mha.toml plans/fixture-gqa.toml $C/wgsl-gqa-hd128.toml > $R/check-staged.txt 2>&1
echo "check rc=$?" >> $R/check-staged.txt
grep -E "F16.*decode runs|FAIL|pass|rc=" $R/check-staged.txt | head -8
pack check-staged

MOA_WGSL_COOP_STAGED=1 timeout $(cap 25) $B upstream $L 8 31,0,2,29 16,4 4096,16384 > $R/llama-staged.txt 2>&1
short $R/llama-staged.txt; pack llama-staged
MOA_WGSL_DECODE=scalar timeout $(cap 12) $B upstream $L 8 31,0,2,29 16,4 4096,16384 > $R/llama-scalar.txt 2>&1
short $R/llama-scalar.txt | grep -v copy; pack llama-scalar
MOA_WGSL_COOP_STAGED=1 timeout $(cap 20) $B upstream $V 32 31,0,27 16,4 4096,16384 > $R/vicuna-staged.txt 2>&1
short $R/vicuna-staged.txt | grep -v copy; pack vicuna-staged
MOA_WGSL_DECODE=scalar timeout $(cap 10) $B upstream $V 32 31,0,27 16,4 4096,16384 > $R/vicuna-scalar.txt 2>&1
short $R/vicuna-scalar.txt | grep -v copy; pack vicuna-scalar

MOA_WGSL_COOP_STAGED=1 MOA_WGSL_RESCALE=0 timeout $(cap 10) $B check plans/fixture-gqa.toml $C/wgsl-gqa-hd128.toml > $R/check-staged-rescale0.txt 2>&1
echo "check rc=$?" >> $R/check-staged-rescale0.txt
grep -E "F16.*decode runs|FAIL|pass|rc=" $R/check-staged-rescale0.txt | head -6
pack check-staged-rescale0

timeout $(cap 30) $B upstream $L 8 31,0,2,29 16,4 4096,16384 > $R/llama-direct.txt 2>&1
short $R/llama-direct.txt | grep -v copy; pack llama-direct
