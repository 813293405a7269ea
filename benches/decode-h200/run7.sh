#!/bin/bash
# Device call 7 (s7-decode), one call of ≤ 150 s: the decode work list's chunk policies
# side by side (runtime::worklist::ChunkPolicy; benches/RESULTS.md "Call 7"). Steps in
# priority order, each capped by `timeout` and by what is left of the call; everything is
# packed into $OUT/results.tar.gz after each step (the device tool returns few files).
#  1. cuda_check on the fixtures with the candidate policy `stream:38:4:3` (f32, f16, bf16)
#  2. attention_bench: every Llama-3-8B layer, B = 16 and 4, prompts 4k and 16k, four
#     policies (waves:2 = the runtime's until now, stream:38:4:3, stream:50:4:3, waves:6);
#     a layer that two policies cut alike is timed once (`reused` in the JSON)
#  3. decode_peers.py: dense SDPA for both models in the same call
#  4. cuda_check on both upstream plans, bf16 and f16, with `stream:38:4:3`
#  5. attention_bench: every Vicuna-7B layer, waves:2 against stream:38:4:3
# Run from the repository root; the carry folder holds attention_bench, cuda_check,
# cubins.tar.xz (cuda_cubins), spans.json (attention_bench --spans --dry-run-blocks), policies.py and
# this script.
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
s=$(date +%s)
END=${END:-150}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r; mkdir -p $R /tmp/cubins && tar -xJf $C/cubins.tar.xz -C /tmp/cubins
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tar.gz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
P=stream:38:4:3
timeout $(cap 15) $C/cuda_check plans/fixture-mha.toml plans/fixture-gqa.toml --chunk-policy $P > $R/check-fixtures.txt 2>&1
grep -E "pass|FAIL" $R/check-fixtures.txt | tail -8
pack fixtures
timeout $(cap 60) $C/attention_bench --model llama-3-8b:8:$L --batch 16,4 --prompt 4096,16384 --no-dense --replays 5 \
  --chunks waves:2,$P,stream:50:4:3,waves:6 --json $R/bench-llama.jsonl > $R/bench-llama.md 2> $R/bench-llama.err
tail -3 $R/bench-llama.err; wc -l < $R/bench-llama.jsonl
pack bench-llama
timeout $(cap 35) python3 benches/peers/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none \
  --replays 7 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err
tail -2 $R/peers.err
python3 $C/policies.py $R/bench-llama.jsonl $R/peers.jsonl --base waves:2 > $R/policies-llama.md 2>&1
cat $R/policies-llama.md
pack peers
for spec in "$L --kv-heads 8" "$V --kv-heads 32"; do
  echo "== $spec"; timeout $(cap 35) $C/cuda_check --upstream $spec --dtypes bf16,f16 --chunk-policy $P 2>&1 | tail -14
done > $R/check-upstream.txt 2>&1
grep -E "pass|FAIL|error" $R/check-upstream.txt
pack upstream
timeout $(cap 40) $C/attention_bench --model vicuna-7b:32:$V --batch 16,4 --prompt 4096,16384 --no-dense --replays 5 \
  --chunks waves:2,$P --json $R/bench-vicuna.jsonl > $R/bench-vicuna.md 2> $R/bench-vicuna.err
tail -2 $R/bench-vicuna.err
python3 $C/policies.py $R/bench-vicuna.jsonl $R/peers.jsonl --base waves:2 > $R/policies-vicuna.md 2>&1
cat $R/policies-vicuna.md
pack vicuna
cat $R/log.txt
