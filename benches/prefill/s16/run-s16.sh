#!/bin/bash
# s16-prefill's device call, run from the carry folder .dev-s16-prefill/ (this branch's
# release bench_prefill, cuda_check and tests/cuda_engine.rs binaries gzipped, cubins.tar.xz
# from build-cubins.sh, plans/, ab.py, prefill_peers.py, ncu_summary.py). Everything it
# writes comes back as $OUT/results.tgz.
#
# DEF = 3x64x1owghvuncaf (main's bf16 default at head_dim 128), DEF@cw = the same kernel
# with the V pre-pass's first half done by the engine's cache write (moa_v_write writes the
# f16 copy at scale 1 and raises the maxima; only _vfix runs before the prefill), timed as
# _vfix + prefill + (the cache write with the copy - the cache write without the fusion).
# Predictions (before the call):
#  - the cache write (moa_rope_kv over Q, K, V at Vicuna-7B 4k x 4: 0.8 GB of f32 QKV read,
#    0.55 GB written) ~0.45 ms; moa_v_write without the copy about as fast as moa_rope_kv's
#    V blocks (+-0.02 ms); the copy adds 134 MB of writes at Vicuna-7B 4k x 4 (33 MB at
#    Llama-3-8B): +0.03-0.04 ms (+0.01 ms).
#  - the pre-pass 0.080 ms (Vicuna 4k x 4) / 0.030 (Llama) -> _vfix alone ~0.004 ms.
#  - net: DEF@cw / DEF ~0.96-0.97 on near-dense Vicuna-7B 4k x 4 layers (-0.04 of 1.2 ms),
#    ~0.93-0.95 on its narrow layers (-0.04 of 0.6), Llama-3-8B ~0.98-0.99; 16k x 1 alike
#    in ms (smaller as a share).
#  - MHA premium: Vicuna-7B layers with 8 KV heads (same masks, GQA group 4) ~0.88x the
#    32-KV-head time if the premium is MHA's alone (fit: 1.43 / 1.63 us per tile).
#  1. Checks: bench_prefill --check-prepass --cache-write on layer 0 of both plans at 4k x 4
#     and 16k x 1 (moa_v_write's V and V cache = moa_rope_kv's bit for bit; the fused copy +
#     _vfix = the host's conversion); tests/cuda_engine.rs on the GPU (ops vs their CPU
#     references incl. moa_v_write, fused vs pre-pass nats bit for bit, the rest).
#  2. A/B DEF vs DEF@cw, every layer of both plans, 4k x 4 and 16k x 1, 3 rounds (A/A from
#     the rounds), the cache write timed per layer; SDPA (dense causal) on the same rows.
#  3. MHA vs GQA on the same masks: vicuna7b:32 vs vicuna7b:8, layers 7, 15, 17, 27, 4k x 4,
#     3 rounds; ncu (a few sections) of layer 15 of both at 4k x 4, one launch each.
#  4. Side by side: cuda_check of DEF (bf16) and 3x64x1owghncf (f16) on both upstream plans,
#     memcheck of the engine test with the fused write, racecheck of cuda_check fixture-gqa.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
DEF=3x64x1owghvuncaf
DEF16=3x64x1owghncf
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
END=${END:-280}
s=$(date +%s); el() { echo $(( $(date +%s) - s )); }; t() { echo "# $1 t=$(el) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
[ -d cubins ] || { mkdir -p cubins && tar xJf cubins.tar.xz -C cubins; }
for b in bench_prefill cuda_check cuda_engine; do gunzip -f $b.gz 2>/dev/null; chmod +x $b; done
ls cubins | wc -l
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
t start
{
for pr in "4096 --rows 4" "16384 --rows 1"; do
  timeout 25 ./bench_prefill $P --variants $DEF --layers-only 0 --prompts $pr --reps 2 --check-prepass --cache-write --out "$OUT/check_${pr%% *}.jsonl" 2>&1 | grep -v "^|---"
done
} > "$OUT/quick.txt" 2>&1
cat "$OUT/quick.txt"
t quick
timeout 60 ./cuda_engine --test-threads 1 --skip real_smollm2 > "$OUT/engine_tests.txt" 2>&1
tail -25 "$OUT/engine_tests.txt"
t engine
grep -q "test result: ok" "$OUT/engine_tests.txt" && [ "$(grep -c 'equal the host' "$OUT/quick.txt")" -ge 4 ] || { echo "# checks failed: no A/B" | tee -a "$OUT/times.txt"; CHECK_FAILED=1; }
if [ -z "$CHECK_FAILED" ]; then
  timeout 60 ./bench_prefill $P --variants $DEF,$DEF@cw --prompts 4096 --rows 4 --reps 5 --rounds 3 --out "$OUT/ab4k.jsonl" > "$OUT/ab.log" 2>&1
  t ab4k
  timeout 50 ./bench_prefill $P --variants $DEF,$DEF@cw --prompts 16384 --rows 1 --reps 5 --rounds 3 --out "$OUT/ab16k.jsonl" >> "$OUT/ab.log" 2>&1
  python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
  sed -n '/^A\/B/,$p' "$OUT/ab_full.md" | head -16
  t ab
  [ "$(el)" -lt $((END - 150)) ] && timeout 35 python3 prefill_peers.py "$OUT/ab_full.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
  cat "$OUT/peers_table.md"
  t peers
fi
V8="plans/vicuna7b.json:32 plans/vicuna7b_kv8.json:8"
[ "$(el)" -lt $((END - 120)) ] && timeout 25 ./bench_prefill $V8 --variants $DEF --layers-only 7,15,17,27 --prompts 4096 --rows 4 --reps 5 --rounds 3 --out "$OUT/mha_gqa.jsonl" > "$OUT/mha_gqa.log" 2>&1
grep "^| vicuna" "$OUT/mha_gqa.log" | head -30
t mha_gqa
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
if [ -n "$NCU" ] && [ "$(el)" -lt $((END - 100)) ]; then
  NCU_ARGS=(--clock-control none -k regex:'moa_prefill_bf16_hd128_l15$' --launch-count 2 --section SpeedOfLight
    --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section Occupancy
    --section LaunchStats -f)
  for kv in 32 8; do
    timeout 40 "$NCU" "${NCU_ARGS[@]}" -o "$OUT/ncu$kv" ./bench_prefill $([ $kv = 8 ] && echo plans/vicuna7b_kv8.json:8 || echo plans/vicuna7b.json:32) --variants $DEF --layers-only 15 --prompts 4096 --rows 4 --reps 1 --warmups 0 --out "$OUT/ncu_bench$kv.jsonl" > "$OUT/ncu$kv.log" 2>&1
    tail -3 "$OUT/ncu$kv.log"
    if [ -s "$OUT/ncu$kv.ncu-rep" ]; then
      "$NCU" --import "$OUT/ncu$kv.ncu-rep" --page raw --csv > "$OUT/ncu_raw$kv.csv" 2>/dev/null
      "$NCU" --import "$OUT/ncu$kv.ncu-rep" --page details --csv > "$OUT/ncu_details$kv.csv" 2>/dev/null
      python3 ncu_summary.py "$OUT/ncu_raw$kv.csv" "$OUT/ncu_bench$kv.jsonl" > "$OUT/ncu_summary$kv.md" 2>&1
      cat "$OUT/ncu_summary$kv.md"
      [ "$(stat -c %s "$OUT/ncu$kv.ncu-rep")" -gt 8000000 ] && rm -f "$OUT/ncu$kv.ncu-rep"
    fi
  done
else
  echo "# no ncu or no time" | tee -a "$OUT/times.txt"
fi
t ncu
C="--prefill-variant"
CT=$(( END - $(el) )); [ $CT -gt 60 ] && CT=60; [ $CT -lt 40 ] && CT=40
(timeout $CT ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes bf16 $C $DEF > "$OUT/c_llama.txt" 2>&1) &
(timeout $CT ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes bf16 $C $DEF > "$OUT/c_vicuna.txt" 2>&1) &
(timeout $CT ./cuda_check --upstream plans/llama3_8b.json --kv-heads 8 --dtypes f16 $C $DEF16 > "$OUT/c_llama16.txt" 2>&1) &
(timeout $CT ./cuda_check --upstream plans/vicuna7b.json --kv-heads 32 --dtypes f16 $C $DEF16 > "$OUT/c_vicuna16.txt" 2>&1) &
(timeout $CT compute-sanitizer --tool memcheck ./cuda_engine --test-threads 1 prefill_with_the_v_copy ops_match > "$OUT/c_memcheck.txt" 2>&1) &
(timeout $CT compute-sanitizer --tool racecheck ./cuda_check plans/fixture-gqa.toml --dtypes bf16 $C $DEF > "$OUT/c_racecheck.txt" 2>&1) &
wait
for f in llama vicuna llama16 vicuna16 memcheck racecheck; do echo "== $f"; tail -4 "$OUT/c_$f.txt"; done > "$OUT/check.txt"
cat "$OUT/check.txt"
t check
