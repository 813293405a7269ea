#!/bin/bash
# Session 35, s35-wide (one H200, CUDA): GQA groups past 8 query heads as sub-groups of <= 8
# (codegen::cuda::decode_sub_groups: 16 -> 2 of 8, 32 -> 4 of 8; each sub-group its own work-list
# segment over its KV head's cache, CacheLayout::sub_grouped), against session 34's whole group in
# one block (the variant letter G) and dense SDPA with the same KV heads, in one call.
#   mkdir -p .dev-s35-wide; gzip -c cuda_check > .dev-s35-wide/cuda_check.gz (and attention_bench);
#   cubins (cuda_cubins, sm_90a, ptxas of the CUDA wheels) as .dev-s35-wide/cubins.tar.gz;
#   cp benches/decode-h200/s35/wide-sub.sh .dev-s35-wide/
#   run tool: "bash .dev-s35-wide/wide-sub.sh", carry [".dev-s35-wide"], timeout_s 230
# Why: the lead's call (benches/lead-h200/s35/wide-gqa-speed.sh) found g16 at B = 4 0.70x and MQA
# 0.33-0.43x of dense SDPA's speed; ptxas -v here: the whole-group kernel takes 255 registers (g16)
# and 255 plus 356-696 bytes of spills and 21.5 KB of static shared memory (MQA: one block an SM),
# and both lose the fast merge (16-32 output elements a thread), so a split segment merges through
# shared memory. As sub-groups the block is the group-of-8 kernel: 162 registers, no spills (hd128;
# 96 at hd64), fast merge, lean epilogue, half partials, 264 resident.
# MODEL / PREDICTION (written before the call): every check passes (f16 ~3.5e-4, bf16 ~2e-3, as
# session 34). Each slot is read once per sub-group, the later reads mostly from L2 (a layer's items
# are one wave, so a chunk's sub-group items stream side by side); HBM bytes unchanged.
#   g16 B=4: 9-13 us (was 28; SDPA 19.6 -> 1.5-2.2x);  MQA B=4: 9-13 us (was 54-60; SDPA 19.9)
#   g16 B=16: 20-28 us (was 29.5-30.5; SDPA 32.4 -> 1.15-1.6x)
#   MQA B=16: 17-27 us (was 54-68; SDPA 23.2 -> 0.85-1.35x: the risk, 4 reads of each slot via L2)
#   the G rows reproduce the lead's within +-2 us; g4 (no sub-groups) identical in both variants.
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/wide; mkdir -p "$R" /tmp/cubins
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
tar -xzf "$D/cubins.tar.gz" -C /tmp/cubins
for b in cuda_check attention_bench; do gunzip -c "$D/$b.gz" > /tmp/$b && chmod +x /tmp/$b; done
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
P=benches/lead-h200/s34/plans
chk() { local n=$1; shift; ( timeout 110 /tmp/cuda_check "$@" > "$R/check-$n.txt" 2>&1; echo "rc=$?" >> "$R/check-$n.txt" ) & }
chk wide16 $P/wide-gqa16.toml --dtypes f16,bf16
chk wide32 $P/wide-gqa32.toml --dtypes f16,bf16
chk llama-kv2 --upstream $L --layers 4 --kv-heads 2 --dtypes f16,bf16
chk llama-kv1 --upstream $L --layers 4 --kv-heads 1 --dtypes f16,bf16
chk llama-kv8 --upstream $L --layers 4 --kv-heads 8 --dtypes bf16
wait; el "checks done"
for f in "$R"/check-*.txt; do echo "== $f"; grep -E "^\||rc=|FAIL|error" "$f" | tail -6; done | tee "$R/checks.txt"
timeout 120 /tmp/attention_bench --model g4:8:$L --model g16:2:$L --model mqa:1:$L --variants 4x3eqmskv,4x3eqmskvG \
  --batch 16,4 --prompt 4096 --layers 0,8,16,24,31 --json "$R/moa.jsonl" --spans "$R/spans.json" > "$R/moa.md" 2> "$R/moa.err"; el "moa rc=$?"
timeout 70 python3 benches/peers/decode_peers.py --spans "$R/spans.json" --batch 16,4 --flex-layers none \
  --moa "$R/moa.jsonl" --json "$R/peers.jsonl" > "$R/peers.md" 2> "$R/peers.err"; el "peers rc=$?"
tail -3 "$R/moa.err" "$R/peers.err"; cat "$R/peers.md"
if [ -n "$OUT" ]; then tar -czf "$OUT/wide.tar.gz" -C "$R" .; cp "$R/moa.md" "$R/peers.md" "$R/checks.txt" "$OUT/"; fi
