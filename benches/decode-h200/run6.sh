#!/bin/bash
# Device call 6 (s6-decode), one call of ≤ 240 s, steps in priority order, each capped by
# `timeout` and by what is left of the call; everything is packed into $OUT/results.tar.gz
# after each step (the device tool returns few files).
#  1. cuda_check on the fixtures (f32, f16, bf16; on Hopper every decode case also runs
#     three times back to back with programmatic dependent launch)
#  2. attention_bench: every layer of both upstream plans, B = 16 and 4, prompts 4k and
#     16k, the default kernel launched plain and with PDL side by side; own dense
#  3. decode_peers.py: dense SDPA in the same call
#  4. wgpu_decode_bench upstream: the WGSL decode against a WGSL copy kernel (Vulkan)
#  5. cuda_check on both upstream plans in bf16, 6. a kernel-shape sweep (more, smaller
#     blocks per SM against the per-block fixed cost) on layers 0, 17 and the Llama
#     layers that miss (25, 27, 29), prompt 4k, 7. compute-sanitizer, 8. the upstream plans in f16.
# Run from the repository root; the carry folder holds the release binaries
# (attention_bench, cuda_check, wgpu_decode_bench), cubins.tar.xz (cuda_cubins) and .gl/
# (the Vulkan loader .debs, see .library/device/README.md).
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
s=$(date +%s)
END=${END:-225}
el() { echo $(( $(date +%s) - s )); }
# A step's cap: its own limit or what is left of the call, whichever is less.
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r; mkdir -p $R /tmp/cubins && tar -xJf $C/cubins.tar.xz -C /tmp/cubins
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tar.gz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
timeout $(cap 25) $C/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml > $R/check-fixtures.txt 2>&1
grep -E "pass|FAIL" $R/check-fixtures.txt | tail -8
pack fixtures
M="--model vicuna-7b:32:$V --model llama-3-8b:8:$L --batch 16,4 --prompt 4096,16384"
timeout $(cap 75) $C/attention_bench $M --variants 4x3 --launch plain,pdl --replays 7 --json $R/bench-both.jsonl \
  --spans $R/spans.json > $R/bench.md 2> $R/bench.err
grep '"launch":"plain"' $R/bench-both.jsonl > $R/bench.jsonl
tail -3 $R/bench.err
pack bench
timeout $(cap 40) python3 benches/peers/decode_peers.py --spans $R/spans.json --batch 16,4 --flex-layers none \
  --replays 7 --json $R/peers.jsonl --moa $R/bench.jsonl > $R/peers.md 2> $R/peers.err
python3 benches/decode-h200/tables.py $R/bench.jsonl $R/peers.jsonl > $R/tables.md 2>&1
head -12 $R/tables.md
pack peers
( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig ) > $R/vulkan-setup.txt 2>&1
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
{ timeout $(cap 35) $C/wgpu_decode_bench upstream $L 8 0,2,29 16,4 4096,16384
  timeout $(cap 25) $C/wgpu_decode_bench upstream $V 32 0,27 16,4 4096,16384; } > $R/wgpu.txt 2>&1
grep -v '^{' $R/wgpu.txt | head -40
pack wgpu
for spec in "$L --kv-heads 8" "$V --kv-heads 32"; do
  echo "== $spec bf16"; timeout $(cap 30) $C/cuda_check --upstream $spec --dtypes bf16 2>&1 | tail -12
done > $R/check-upstream-bf16.txt 2>&1
grep -E "pass|FAIL" $R/check-upstream-bf16.txt
pack upstream-bf16
M4="--model vicuna-7b:32:$V --model llama-3-8b:8:$L --batch 16,4 --prompt 4096"
timeout $(cap 30) $C/attention_bench $M4 --variants 4x3,3x3,2x3,4x2,2x4 --layers 0,17,25,27,29 --no-dense --replays 5 \
  --json $R/sweep-variants.jsonl > $R/sweep-variants.md 2> $R/sweep-variants.err
python3 benches/decode-h200/select.py --by variant $R/sweep-variants.jsonl > $R/select-variants.txt 2>&1
cat $R/select-variants.txt | head -30
pack variants
for tool in memcheck racecheck; do
  echo "== $tool"; timeout $(cap 20) compute-sanitizer --tool $tool $C/cuda_check plans/fixture-gqa.toml --dtypes bf16 2>&1 | tail -6
done > $R/sanitizer.txt 2>&1
grep SUMMARY $R/sanitizer.txt
pack sanitizer
for spec in "$L --kv-heads 8" "$V --kv-heads 32"; do
  echo "== $spec f16"; timeout $(cap 30) $C/cuda_check --upstream $spec --dtypes f16 2>&1 | tail -12
done > $R/check-upstream-f16.txt 2>&1
grep -E "pass|FAIL" $R/check-upstream-f16.txt
pack upstream-f16
cat $R/log.txt
