#!/bin/bash
# Session 36, s36-mqa (one H200, CUDA), call 1: sub-groups of 8 sharing ONE block's staged K/V tile
# (codegen::cuda::decode_block_sub_groups / decode_col_tiles; the letters P = two sub-groups a block,
# A = all of a KV head's). The block has WARPS warps per MMA column tile of its heads; warp w takes
# keys 16 * (w / NCT) of each staged tile against column tile w % NCT, so a slot crosses L2 -> SM
# once per 16 heads (P) or once per KV head (A) instead of once per 8 (the default 4x3eqmskv, session
# 35's sub-groups). Here: ptxas (bf16/f16, hd128) 4x3eqmskvP 128 registers, 0 spills, 256 threads,
# 96 KB stages (2 blocks an SM); 4x3eqmskvA on MQA 128 registers, 0 spills, 512 threads (1 an SM).
#   (cubins: the wide plans and the benchmark's layers only)
#   BIN=/tmp/s36-mqa-bin CUB=/tmp/s36-mqa-cub bash benches/decode-h200/s36/mqa/pack.sh /work/main/.dev-s36-mqa
#   run tool: "bash .dev-s36-mqa/mqa.sh", carry [".dev-s36-mqa"], timeout_s 240
# 1. cuda_check (every case of runtime::cases' standard set) with the new forms: wide-gqa16 (P; A is the
#    same kernel), wide-gqa32 (P, A), f16 and bf16 (the Llama-3-8B checks on every layer follow in call 2,
#    once their 192 cubins are built here: ~10 s each on this shared 2-core machine).
# 2. attention_bench, Llama-3-8B plan with 2 KV heads (g16) and 1 (MQA), bf16, B = 16 and 4, prompts
#    4096 and 16384, layers 0,8,16,24,31: 4x3eqmskv (default) against 4x3eqmskvP and 4x3eqmskvA (on g16
#    A = P: an A/A pair), then dense SDPA with the same KV heads (decode_peers.py) in the same call.
# MODEL / PREDICTION (written before the call):
#   checks: all pass, errors equal to session 35's within rounding (f16 ~3.5-4.1e-4, bf16 ~2.05-2.08e-3;
#   the per-warp math is the same, only the merge has 4 key-row warps a column instead of 4).
#   Time follows the blocks' L2 -> SM stream (session 35: 256 x ~1000 slots x 512 B = 134 MB at ~6 TB/s)
#   until the HBM bytes bound it (~3.8-4.2 TB/s of plan bytes, g4's rate):
#   4k  g16 B=16: default 23.5-25.5 us; P 16-20 (67 MB of stream, = HBM bytes; 3.3-4.0 TB/s), SDPA 32 -> 1.6-2.0x
#   4k  MQA B=16: default 21.2-22.7; P 12-15 (67 MB of stream); A 10-14 (34 MB; one block an SM), SDPA 23 -> 1.6-2.3x
#   4k  g16 B=4: default 12.7-13.3; P 10-13 (latency and merge bound: short lists)
#   4k  MQA B=4: default 12.3-12.9; P 10-12.5; A 9-12.5
#   16k: default rates like 4k's (g16 ~2.6, MQA ~1.5 TB/s at B=16); P g16 3.3-3.9 TB/s; MQA P 2.5-3.2, A 3.0-3.8;
#        B=4 16k with longer chunks: P and A 1.1-1.4x faster than the default.
#   P on g16 = A on g16 (same kernel) within +-0.3 us.
D=$(cd "$(dirname "$0")" && pwd); R=/tmp/mqa; mkdir -p "$R" /tmp/cubins
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=/tmp/cubins
tar -xzf "$D/cubins.tar.gz" -C /tmp/cubins
for b in cuda_check attention_bench; do gunzip -c "$D/$b.gz" > /tmp/$b && chmod +x /tmp/$b; done
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
P=benches/lead-h200/s34/plans
chk() { local n=$1; shift; ( timeout 150 /tmp/cuda_check "$@" --dtypes f16,bf16 > "$R/check-$n.txt" 2>&1; echo "rc=$?" >> "$R/check-$n.txt" ) & }
chk wide16-P $P/wide-gqa16.toml --variant 4x3eqmskvP
chk wide32-P $P/wide-gqa32.toml --variant 4x3eqmskvP
chk wide32-A $P/wide-gqa32.toml --variant 4x3eqmskvA
wait; el "checks done"
for f in "$R"/check-*.txt; do echo "== $f"; grep -E "^\||rc=|FAIL|rror|compil" "$f" | tail -6; done | tee "$R/checks.txt"
timeout 150 /tmp/attention_bench --model g16:2:$L --model mqa:1:$L --variants 4x3eqmskv,4x3eqmskvP,4x3eqmskvA \
  --batch 16,4 --prompt 4096,16384 --layers 0,8,16,24,31 --json "$R/moa.jsonl" --spans "$R/spans.json" > "$R/moa.md" 2> "$R/moa.err"; el "moa rc=$?"
timeout 100 python3 benches/peers/decode_peers.py --spans "$R/spans.json" --batch 16,4 --flex-layers none \
  --moa "$R/moa.jsonl" --json "$R/peers.jsonl" > "$R/peers.md" 2> "$R/peers.err"; el "peers rc=$?"
tail -3 "$R/moa.err" "$R/peers.err"; grep -E "resident|compiled" "$R/moa.err"
if [ -n "$OUT" ]; then tar -czf "$OUT/mqa.tar.gz" -C "$R" .; cp "$R/moa.md" "$R/peers.md" "$R/checks.txt" "$OUT/"; fi
