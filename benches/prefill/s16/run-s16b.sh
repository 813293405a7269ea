#!/bin/bash
# s16-prefill's second device call (carry .dev-s16-prefill/: this call's bench_prefill,
# cuda_engine test binary, call 1's cubins and scripts). Results come back as results.tgz.
#
# Since call 1: the engine's prefill pass writes Q and K with moa_rope_qk (blocks of 64
# tokens) and V with moa_v_write; bench_prefill --cache-write times every variant after
# the layer's cache write (as the engine runs it: the prefill reads what the write left)
# and takes the write's split-form median off (moa_ms), reads its event times only after
# the prefill (no host round trip between the pre-pass and the prefill any more).
# Predictions (before the call):
#  - the cache write at Vicuna-7B 4k x 4: moa_rope_kv 1.90 ms (call 1) -> moa_rope_qk +
#    moa_v_write ~0.45 ms (1.3 GB at ~3 TB/s); Llama-3-8B 0.95 -> ~0.25 ms.
#  - DEF@cw / DEF (net: the copy's cost + _vfix against the pre-pass): Vicuna-7B 4k x 4
#    ~0.955 (call 1: 0.952 with the write outside), Llama-3-8B ~0.98, 16k x 1 ~0.98-0.99
#    (call 1's 1.004-1.02 came from a prefill reading a cold f16 copy, which the engine
#    does not have: now the write precedes both).
#  - --compare: DEF@cw's outputs equal DEF's (max diff 0): same q, k, v and f16 copy bits.
#  1. bench_prefill --check-prepass --cache-write --compare, layer 0 of both plans, 4k x 4
#     (moa_rope_qk/moa_v_write against moa_rope_kv: V and V cache bit for bit, Q, K and
#     K cache counted; the fused copy + _vfix against the host).
#  2. tests/cuda_engine.rs on the GPU (ops vs CPU references incl. rope_qk and v_write,
#     fused vs pre-pass nats bit for bit, the engine's tokens against the CPU reference).
#  3. A/B DEF vs DEF@cw, every layer of both plans, 4k x 4 (3 rounds) and 16k x 1 (2),
#     the write timed in; dense causal SDPA on the same rows.
#  4. memcheck of the engine's fused-write test and the ops check.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
DEF=3x64x1owghvuncaf
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
END=${END:-150}
s=$(date +%s); el() { echo $(( $(date +%s) - s )); }; t() { echo "# $1 t=$(el) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
[ -d cubins ] || { mkdir -p cubins && tar xJf cubins.tar.xz -C cubins; }
for b in bench_prefill cuda_engine; do gunzip -f $b.gz 2>/dev/null; chmod +x $b; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
t start
timeout 20 ./bench_prefill $P --variants $DEF,$DEF@cw --layers-only 0 --prompts 4096 --rows 4 --reps 2 --check-prepass --cache-write --compare --out "$OUT/check_4096.jsonl" 2>&1 | grep -v "^|---" > "$OUT/quick.txt"
cat "$OUT/quick.txt"
t quick
timeout 45 ./cuda_engine --test-threads 1 --skip real_smollm2 > "$OUT/engine_tests.txt" 2>&1
tail -18 "$OUT/engine_tests.txt"
t engine
grep -q "test result: ok" "$OUT/engine_tests.txt" && [ "$(grep -c 'equal the host' "$OUT/quick.txt")" -ge 4 ] || { echo "# checks failed: no A/B" | tee -a "$OUT/times.txt"; t failed; exit 1; }
timeout 45 ./bench_prefill $P --variants $DEF,$DEF@cw --cache-write --prompts 4096 --rows 4 --reps 5 --rounds 3 --out "$OUT/ab4k.jsonl" > "$OUT/ab.log" 2>&1
t ab4k
timeout 35 ./bench_prefill $P --variants $DEF,$DEF@cw --cache-write --prompts 16384 --rows 1 --reps 5 --rounds 2 --out "$OUT/ab16k.jsonl" >> "$OUT/ab.log" 2>&1
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
sed -n '/^A\/B/,$p' "$OUT/ab_full.md" | head -16
grep "cache write ms" "$OUT/ab.log" | awk 'NR % 8 == 1'
t ab
[ "$(el)" -lt $((END - 30)) ] && timeout 30 python3 prefill_peers.py "$OUT/ab_full.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
cat "$OUT/peers_table.md"
t peers
CT=$(( END - $(el) )); [ $CT -gt 30 ] && CT=30; [ $CT -lt 15 ] && CT=15
timeout $CT compute-sanitizer --tool memcheck ./cuda_engine --test-threads 1 prefill_with_the_v_copy ops_match > "$OUT/c_memcheck.txt" 2>&1
tail -4 "$OUT/c_memcheck.txt"
t memcheck
