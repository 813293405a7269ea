#!/bin/bash
# s16-prefill's third device call (carry .dev-s16-prefill/: this call's bench_prefill, call
# 1's cubins). Results come back as results.tgz.
#
# Calls 1 and 2 timed DEF then DEF@cw in every round; at Vicuna-7B 16k x 1 the prefill
# kernel alone (the same cubin, the same input bits) took 1.023x / 1.028x in the second
# slot. Prediction: that is the slot, not the copy (the GPU's clock after 7 launches of
# 3.3 ms): with the order reversed in odd rounds (--abba) DEF@cw / DEF at 16k x 1 comes
# to ~0.985 (the pre-pass 0.076 ms against the copy's 0.026 + _vfix 0.004 of a ~3.3 ms
# layer), and 4k x 4 stays at 0.95 (Vicuna-7B) / 0.98-0.99 (Llama-3-8B); per slot, the
# second slot's times exceed the first's by ~2% at Vicuna-7B 16k x 1 whichever variant.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
DEF=3x64x1owghvuncaf
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
s=$(date +%s); el() { echo $(( $(date +%s) - s )); }; t() { echo "# $1 t=$(el) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
[ -d cubins ] || { mkdir -p cubins && tar xJf cubins.tar.xz -C cubins; }
gunzip -f bench_prefill.gz 2>/dev/null; chmod +x bench_prefill
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader > "$OUT/env.txt" 2>&1
t start
timeout 30 ./bench_prefill $P --variants $DEF,$DEF@cw --cache-write --abba --prompts 16384 --rows 1 --reps 5 --rounds 4 --out "$OUT/ab16k.jsonl" > "$OUT/ab.log" 2>&1
t ab16k
timeout 25 ./bench_prefill $P --variants $DEF,$DEF@cw --cache-write --abba --prompts 4096 --rows 4 --reps 5 --rounds 4 --out "$OUT/ab4k.jsonl" >> "$OUT/ab.log" 2>&1
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
sed -n '/^A\/B/,$p' "$OUT/ab_full.md" | head -16
t ab
timeout 20 python3 prefill_peers.py "$OUT/ab_full.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
cat "$OUT/peers_table.md"
t peers
