#!/bin/bash
# Device call 11 (prepared by s8-decode, not yet run), ≤ 90 s of work: what call 10 left
# (benches/RESULTS.md "Call 10"):
#  1. cuda_check on the Vicuna-7B upstream plan, bf16 and f16, runtime chunks by
#     waves:2:pairs (every decode case also as clusters of 2 and 8): the check that MHA's
#     waves:2:pairs default waits for
#  2. attention_bench on both plans, every layer, B = 16 and 4, 4k and 16k: the defaults
#     (auto) against waves:2:pairs (Vicuna) / waves:10 (Llama, the old GQA default); its
#     stderr prints how many clusters of 2, 4 and 8 are resident at once
#  3. decode_peers.py (SDPA) and policies.py tables
# Carry folder .dev-s8-decode: attention_bench, cuda_check (commit with
# decode_max_active_clusters), cubins.tar.xz, spans.json, policies.py, this.
C=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
s=$(date +%s)
END=${END:-90}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r11; mkdir -p $R /tmp/cubins && tar -xJf $C/cubins.tar.xz -C /tmp/cubins
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; tar -czf $OUT/results.tar.gz -C $R .; }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > $R/env.txt
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
timeout $(cap 45) $C/cuda_check --upstream $V --kv-heads 32 --dtypes bf16,f16 --chunk-policy waves:2:pairs > $R/check-vicuna.txt 2>&1
grep -E "pass|FAIL|error" $R/check-vicuna.txt
pack check
for m in "llama-3-8b:8:$L:waves:10" "vicuna-7b:32:$V:waves:2:pairs"; do
  n=${m%%:*}; spec=$(echo "$m" | cut -d: -f1-3); alt=$(echo "$m" | cut -d: -f4-)
  timeout $(cap 20) $C/attention_bench --model $spec --batch 16,4 --prompt 4096,16384 --no-dense --replays 7 \
    --chunks auto,$alt --json $R/bench-$n.jsonl > $R/bench-$n.md 2> $R/bench-$n.err
  cat $R/bench-$n.err | tail -3
done
pack bench
timeout $(cap 20) python3 benches/peers/decode_peers.py --spans $C/spans.json --batch 16,4 --flex-layers none \
  --replays 7 --json $R/peers.jsonl > $R/peers.md 2> $R/peers.err
for n in llama-3-8b vicuna-7b; do
  python3 $C/policies.py $R/bench-$n.jsonl $R/peers.jsonl --base auto > $R/policies-$n.md 2>&1
  cat $R/policies-$n.md
done
pack peers
cat $R/log.txt
