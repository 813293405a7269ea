#!/bin/bash
# Device call 9 (s7-wgsl): call 8's kernel (74c2703, wgpu_decode_bench.c8) against the same
# kernel with K loads issued before the row position is known (wgpu_decode_bench), side
# by side, each list after a throwaway first configuration (call 8's first configuration,
# Llama layer 0 B=16 4k, timed 823 us against 156 us for layer 2: a warm-up artefact or
# real is what this settles); then where a small step's time goes (MOA_WGSL_PARTS).
# One call of <= 90 s, steps capped by `timeout` and by what is left; results packed
# into $OUT/results.tar.gz after each step. Carry folder: wgpu_decode_bench,
# wgpu_decode_bench.c8, wgsl-gqa-hd128.toml, .gl/ (Vulkan loader .debs).
# Run from the repository root: bash .dev-<branch>/run9-wgsl.sh
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-85}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r9; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
command -v nvidia-smi > /dev/null && ( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig ) > $R/vulkan-setup.txt 2>&1
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
short() { grep -v '^{' "$1" | grep -v "layer 31" | sed 's/ (N=[^)]*)//'; }

timeout $(cap 20) $C/wgpu_decode_bench check plans/fixture-mha.toml plans/fixture-gqa.toml $C/wgsl-gqa-hd128.toml > $R/check.txt 2>&1
echo "check rc=$?" >> $R/check.txt
grep -E "decode runs|FAIL|pass|rc=" $R/check.txt | head -12
pack check

timeout $(cap 18) $C/wgpu_decode_bench upstream $L 8 31,0,2,29 16,4 4096,16384 > $R/llama-new.txt 2>&1
short $R/llama-new.txt; pack llama-new
timeout $(cap 18) $C/wgpu_decode_bench.c8 upstream $L 8 31,0,2,29 16,4 4096,16384 > $R/llama-c8.txt 2>&1
short $R/llama-c8.txt; pack llama-c8
timeout $(cap 14) $C/wgpu_decode_bench upstream $V 32 31,0,27 16,4 4096,16384 > $R/vicuna-new.txt 2>&1
short $R/vicuna-new.txt; pack vicuna-new
timeout $(cap 14) $C/wgpu_decode_bench.c8 upstream $V 32 31,0,27 16,4 4096,16384 > $R/vicuna-c8.txt 2>&1
short $R/vicuna-c8.txt; pack vicuna-c8
{ MOA_WGSL_PARTS=step,decode,merge timeout $(cap 12) $C/wgpu_decode_bench upstream $L 8 29 16,4 4096
  MOA_WGSL_PARTS=step,decode,merge timeout $(cap 10) $C/wgpu_decode_bench upstream $V 32 27 16,4 4096; } > $R/parts.txt 2>&1
short $R/parts.txt | grep -v copy; pack parts
