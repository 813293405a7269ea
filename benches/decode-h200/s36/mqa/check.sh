#!/bin/bash
# Session 36, s36-mqa (one H200, CUDA), call 2: (1) the Llama-3-8B checks of the forms P and A on every
# layer (call 1 checked the wide plans); (2) whether call 1's losses of P and A at 4k and at B = 4 are the
# work list's split (the waves policy cut P's 8 segments at B = 4 4k into 32 chunks of 128 slots, where
# the default has 16 segments packed as clusters of 8 x 512) or the block itself: fixed chunks of 512,
# 1024 and 2048 slots against the policy's (auto), layers 8 and 16, B = 16 and 4, prompts 4096 and 16384,
# the default 4x3eqmskv too; and (3) deeper pipelines, 4x5eqmskvP / 4x5eqmskvA (5 stages of 32 KB, one
# block an SM): call 1's A at 16k read 2.5 TB/s with each slot staged once, so its bound looks like the
# bytes in flight of one block an SM (2 of 3 stages, 64 KB), not the L2 -> SM stream. Same binaries as call 1 (s36-mqa 6ec720a); cubins of every layer built here
# (and of layers 8, 16 and wide-gqa32 for 4x5).
#   BIN=/tmp/s36-mqa-bin CUB=/tmp/s36-mqa-cub bash benches/decode-h200/s36/mqa/pack.sh /work/main/.dev-s36-mqa
#   run tool: "bash .dev-s36-mqa/check.sh", carry [".dev-s36-mqa"], timeout_s 200
# MODEL / PREDICTION (written before the call):
#   checks: all pass; errors as session 35's sub-groups to the digit or within rounding (Llama kv2 f16
#   3.848e-4 / bf16 2.077e-3, kv1 4.116e-4 / 2.070e-3), tolerance 2e-3 / 3e-3.
#   sweep: B=4 4k P / A with 512 or 1024-slot chunks 12-15 us (call 1's auto: 19.3-21.7; default 12.2-13.3):
#   the 32-64-way split and its merge were the loss. B=16 4k P with 1024 (128 items) 24-27 us, no better than
#   the default's 25 (the block, not the split, loses there: same items and math, half the staging, +10%).
#   B=4 16k P / A with 1024-2048: 22-27 us (default 23.3-28.8). B=16 16k: auto stays the best of P's (2048).
#   4x5: B=16 16k MQA A 40-48 us (4x3 A: 52.9-55.4; SDPA 48.2), g16 P 66-72 (4x3 P: 73.5-73.9); 4k no
#   better than 4x3 (fewer blocks resident). wide-gqa32 with 4x5eqmskvA passes as 4x3's.
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/mqa2; mkdir -p "$R" /tmp/cubins
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
tar -xzf "$D/cubins.tar.gz" -C /tmp/cubins
for b in cuda_check attention_bench; do gunzip -c "$D/$b.gz" > /tmp/$b && chmod +x /tmp/$b; done
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
chk() { local n=$1; shift; ( timeout 150 /tmp/cuda_check "$@" --dtypes f16,bf16 > "$R/check-$n.txt" 2>&1; echo "rc=$?" >> "$R/check-$n.txt" ) & }
chk llama-kv2-P --upstream $L --kv-heads 2 --variant 4x3eqmskvP
chk llama-kv1-P --upstream $L --kv-heads 1 --variant 4x3eqmskvP
chk llama-kv1-A --upstream $L --kv-heads 1 --variant 4x3eqmskvA
chk wide32-A5 benches/lead-h200/s34/plans/wide-gqa32.toml --variant 4x5eqmskvA
wait; el "checks done"
for f in "$R"/check-*.txt; do echo "== $f"; grep -E "^\||rc=|FAIL|rror|compil" "$f" | tail -6; done | tee "$R/checks.txt"
timeout 120 /tmp/attention_bench --model g16:2:$L --model mqa:1:$L --variants 4x3eqmskv,4x3eqmskvP,4x3eqmskvA,4x5eqmskvP,4x5eqmskvA \
  --batch 16,4 --prompt 4096,16384 --layers 8,16 --chunks auto,512,1024,2048 --json "$R/sweep.jsonl" --spans "$R/spans.json" > "$R/sweep.md" 2> "$R/sweep.err"; el "sweep rc=$?"
timeout 60 python3 benches/peers/decode_peers.py --spans "$R/spans.json" --batch 16,4 --flex-layers none \
  --json "$R/peers.jsonl" > "$R/peers.md" 2> "$R/peers.err"; el "peers rc=$?"
tail -n 3 "$R/sweep.err" "$R/peers.err"; grep -E "resident" "$R/sweep.err"; cat "$R/peers.md"
if [ -n "$OUT" ]; then tar -czf "$OUT/mqa2.tar.gz" -C "$R" .; cp "$R/sweep.md" "$R/peers.md" "$R/checks.txt" "$OUT/"; fi
