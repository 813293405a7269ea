#!/bin/bash
# s17-prefill's first device call, run from the carry folder .dev-s17-prefill/ (this branch's
# release bench_prefill and cuda_check gzipped, cubins.tar.xz from build-cubins.sh, plans/,
# ab.py, prefill_peers.py, ideal.py, ncu_summary.py, ncu_clock.py). Everything it writes
# comes back as $OUT/results.tgz.
#
# DEF = 3x64x1owghvuncaf (main's bf16 default, narrow layers 3x64x1owghvunctf), timed as the
# engine runs it (@cw: the V copy in the cache write, _vfix + prefill). DEF + j / m / i: the
# same kernels, a (query head, row) pair's query tiles launched 2 / 4 / 8 at a time, so the
# blocks of one pair start together and all but the first read its K/V from L2.
# Predictions (before the call), from session 16's ncu of Vicuna-7B l15 at 4k x 4 (32 KV
# heads: 2.97 TB/s of DRAM reads, L2 hit 6%, 1.62 GHz; its masks at 8 KV heads, 4 query
# heads reading each K/V together: 0.94 TB/s, 59%, 1.74 GHz, 0.84-0.88x the time) and the
# clock interpolated linearly in the DRAM rate between those two points:
#  - DRAM reads of Vicuna-7B l15 at 4k x 4: j ~0.52x DEF's (each pair reads the longer band
#    once), m ~0.28x, i ~0.16x; L2 hit ~50 / 75 / 85%.
#  - If the premium is the clock under DRAM load: clock 1.62 -> ~1.70 (j), ~1.73 (m, i);
#    time on near-dense Vicuna-7B 4k x 4 layers 0.95 (j), 0.93 (m, i); Llama-3-8B (59% hit
#    already, its 4 query heads adjacent) 0.98-1.00; 16k x 1 alike per plan.
#  - Against: session 15's L2-section order (`l`: ~8 of a pair's tiles in flight at once,
#    like `i`) took 1.02x on both plans at 4k and 1.03-1.11x at 16k; if `i` repeats that
#    while `j` / `m` do not, the cost is in many blocks on one K/V at once, not the order.
#  1. --compare: j, m, i equal DEF's outputs (layers 0, 15, 27, both plans, 4k x 4, 16k x 1).
#  2. A/B of the four, every layer of both plans, 4k x 4 (4 rounds) and 16k x 1 (2 rounds),
#     --abba; SDPA (dense causal) on the same rows; moa / ideal per variant.
#  3. ncu (SpeedOfLight, MemoryWorkloadAnalysis): Vicuna-7B l15 at 4k x 4 and 16k x 1,
#     Llama-3-8B l15 at 4k x 4, each variant once.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
export PYTHONUNBUFFERED=1
RESULT_DIR=${OUT:-/tmp/out}; mkdir -p "$RESULT_DIR"
OUT=$(mktemp -d)
DEF=3x64x1owghvuncaf
VS=${VS:-$DEF,${DEF}j,${DEF}m,${DEF}i}
VCW=$(echo $VS | sed 's/,/@cw,/g')@cw
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
END=${END:-200}
s=$(date +%s); el() { echo $(( $(date +%s) - s )); }; t() { echo "# $1 t=$(el) s" | tee -a "$OUT/times.txt"; tar czf "$RESULT_DIR/results.tgz" -C "$OUT" .; }
[ -d cubins ] || { mkdir -p cubins && tar xJf cubins.tar.xz -C cubins; }
for b in bench_prefill cuda_check; do gunzip -f $b.gz 2>/dev/null; chmod +x $b; done
ls cubins | wc -l
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem,power.limit --format=csv,noheader > "$OUT/env.txt" 2>&1
t start
{
for pr in "4096 --rows 4" "16384 --rows 1"; do
  timeout 25 ./bench_prefill $P --variants $VS --layers-only 0,15,27 --prompts $pr --reps 1 --compare --out "$OUT/compare_${pr%% *}.jsonl" 2>&1 | grep -v "^|---"
done
} > "$OUT/quick.txt" 2>&1
python3 - "$OUT"/compare_*.jsonl > "$OUT/compare.txt" <<'PY'
import json, sys
rows = [json.loads(l) for f in sys.argv[1:] for l in open(f) if l.strip()]
d = [r.get("max_diff_vs_first") for r in rows if r.get("max_diff_vs_first") is not None]
print(f"{len(rows)} rows, {len(d)} compared, max diff {max(d) if d else 'none'}, nonzero {sum(1 for x in d if x)}")
PY
cat "$OUT/compare.txt"
t compare
timeout 45 ./bench_prefill $P --variants $VCW --cache-write --abba --prompts 4096 --rows 4 --reps 5 --rounds 4 --out "$OUT/ab4k.jsonl" > "$OUT/ab.log" 2>&1
t ab4k
timeout 55 ./bench_prefill $P --variants $VCW --cache-write --abba --prompts 16384 --rows 1 --reps 5 --rounds 2 --out "$OUT/ab16k.jsonl" >> "$OUT/ab.log" 2>&1
python3 ab.py "$OUT/ab4k.jsonl" "$OUT/ab16k.jsonl" --collapsed "$OUT/ab_full.jsonl" > "$OUT/ab_full.md" 2>&1
sed -n '/^A\/B/,$p' "$OUT/ab_full.md" | head -24
t ab
[ "$(el)" -lt $((END - 90)) ] && timeout 30 python3 prefill_peers.py "$OUT/ab_full.jsonl" --reps 5 --no-flex --table "$OUT/peers_table.md" --out "$OUT/peers.jsonl" > "$OUT/peers.log" 2>&1
python3 ideal.py "$OUT/ab_full.jsonl" "$OUT/peers.jsonl" > "$OUT/ideal.md" 2>&1
cat "$OUT/ideal.md"
t peers
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
NCU_ARGS=(--clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis --metrics dram__bytes_read.sum,lts__t_sector_hit_rate.pct -f)
n=0
for cfg in "vicuna7b.json:32 4096 4" "vicuna7b.json:32 16384 1" "llama3_8b.json:8 4096 4"; do
  set -- $cfg; n=$((n + 1))
  [ "$(el)" -lt $((END - 35)) ] || { echo "# no time for ncu $cfg" | tee -a "$OUT/times.txt"; continue; }
  nv=$(echo $VS | tr ',' '\n' | wc -l)
  timeout 40 "$NCU" "${NCU_ARGS[@]}" -k regex:'moa_prefill_bf16_hd128_l15$' --launch-count $nv -o "$OUT/ncu$n" \
    ./bench_prefill plans/$1 --variants $VS --layers-only 15 --prompts $2 --rows $3 --reps 1 --warmups 0 --out "$OUT/ncu_bench$n.jsonl" > "$OUT/ncu$n.log" 2>&1
  tail -2 "$OUT/ncu$n.log"
  if [ -s "$OUT/ncu$n.ncu-rep" ]; then
    "$NCU" --import "$OUT/ncu$n.ncu-rep" --page raw --csv > "$OUT/ncu_raw$n.csv" 2>/dev/null
    python3 ncu_clock.py "$OUT/ncu_raw$n.csv" "$OUT/ncu_bench$n.jsonl" > "$OUT/ncu_clock$n.md" 2>&1
    python3 ncu_summary.py "$OUT/ncu_raw$n.csv" "$OUT/ncu_bench$n.jsonl" > "$OUT/ncu_summary$n.md" 2>&1
    cat "$OUT/ncu_clock$n.md"
    rm -f "$OUT/ncu$n.ncu-rep"; gzip -f "$OUT/ncu_raw$n.csv"
  fi
  t ncu$n
done
