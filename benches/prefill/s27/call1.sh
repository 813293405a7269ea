#!/bin/bash
# s27-prefill's device call (run tool timeout_s 235), from the repository root:
#   bash .dev-s27-prefill/call1.sh
# Carry .dev-s27-prefill/ (benches/prefill/s27/pack.sh: bench_prefill and cuda_check gzipped;
# cubins/ = both upstream plans' modules in bf16 with DEF and W, fixture-gqa with the
# head_dim-64 forms FT, FO (bf16) and FH (f16); tr/ = Vicuna-7B l27's DEF and W kernels with
# benches/prefill/s26/trace_patch.py's clock64 trace under the plain keys).
# Everything comes back as $OUT/results.tgz.
# (Run at 2416061; `W` was removed after it, RESULTS "Session 27 (branch s27-prefill": build
# the binaries and cubins at 2416061 to repeat it.)
#
# DEF = 3x64x1owghvuncafbdHQm (main's bf16 default at head_dim 128; `t` on the narrow layers).
# W = DEF + `W`: l's quad sum (6 shfl.xor a lane, one level) and, in `t` with `b`, the query tile's 5
# geometry words (ld.shared) issued after the last P·V's commit (and turn pass), before its
# wgmma.wait_group; 1/l stays after the wait (the division's slow path is a branch), and with
# `d` the geometry derived from the words (head_span's switch) moves after the output stores.
# One-tile layers change too (only the quad sum moves there).
# The quad sum in one level: lanes q ^ 1, q ^ 2, q ^ 3 read at once, (l_q + l_q^1) + (l_q^2 +
# l_q^3) as the two-level sum adds them (6 shuffles a lane where DEF has 4).
#
# MODEL (before the call). Session 26's trace of l27 (4k x 4, `call1/trace.md` there):
#   wg0 last turn -> P.V done 571 cycles; with R, P.V done -> Q tile released (after the
#   geometry, l's quad sum and 1/l, no output work) 1176; DEF's P.V done -> staged 1434 (the
#   stmatrix staging ~260 of it), staged -> written 909; period 35066 = 12 turns x 2644 +
#   excess 3339. The 1176 are a dependent chain: item_at's 5 ld.shared (one level, their
#   latency paid once: ~350 beside the other warpgroups' MMAs), derive_item (~150 ALU: the
#   head switch, rule_span's 64-bit arithmetic), l's shuffles (2 dependent levels, ~2 x 300),
#   1/l (~50: MUFU + Newton step).
#   Which can start before the wait: the loads and both shuffle levels (l is final after the
#   last ov_finish; the geometry words of Q slot nj % 2 are stable until this tile's qempty).
#   Not 1/l (branch), not derive_item (switch): with `d` it moves after the stores, where
#   only the band-end releases read it; without `d` (`t` alone) it is not needed at all.
#   The wait itself: the last P.V (4 k-steps m64n128k16, V from shared memory) is ~500 of
#   the 571 cycles after the turn. The hoisted work (2 LDS + 6 SHFL, all independent, one
#   level) issues right after the commit and lands ~400-500 cycles later beside the other
#   warpgroups' MMAs and this one's V reads, i.e. about when the P.V completes; after the wait
#   only the adds, 1/l (~80 with the slow-path test), the packing and 8 stmatrix (~260) are
#   left, and derive_item's ~150 leaves the path before the stores.
#   Predicted per query tile and warpgroup: P.V done -> staged 1434 -> ~500 (350-900);
#   staged -> written ~909 (unchanged); the same saving for wg1, wg2 (P.V done -> written
#   2227 / 2358 -> ~1400 / ~1500).
#   Session 26's R moved the period by about the last warpgroup's epilogue change (+860 ->
#   +966), but R also slowed the producer's next Q copy (its 8-row stores); session 25 found
#   warpgroup 0 still waiting ~2000 cycles for tiles after its epilogue (band end, next Q,
#   first K/V tile), so a shorter epilogue counts only through what it releases earlier
#   (`d`'s band-end slots for the next tile's K/V). Prediction: period 35066 -> ~34500
#   (33900-35100), excess 3339 -> ~2800, i.e. -1.6% (0 .. -3%) per query tile at l27.
#  0. --compare W vs DEF max diff 0.0 on the six layers (the same arithmetic in the same
#     order: the sum's shuffles move, not its operands); cuda_check bf16 with W = DEF's
#     maxima (Llama-3-8B 2.063e-3, Vicuna-7B 2.075e-3); fixture f16 3.635e-4; memcheck 0
#     errors, racecheck 0 hazards (FT, FO).
#  1. trace of l27: as above.
#  2. blocks (A B B A, 13 passes at 4k x 4, 7 at 16k x 1, pass 0 left out): W / DEF on the
#     `t` layers 0.980-1.000 (median ~0.99) at 4k x 4 (Vicuna-7B l27 0.459 -> ~0.453 ms);
#     0.993-1.000 at 16k x 1 (more sections a query tile, the fixed saving a smaller share);
#     one-tile layers ~0.998-1.000 (one epilogue a block, its tail). Sums ~0.993 / ~0.998.
#     A/A (DEF's odd / even passes) as in s26: medians 0.99-1.00, ranges +-2-3%, so only
#     the 4k `t` layers can clear it. Engine cells Vicuna 4k 19-23 -> +1..2 (l21-l24).
#  (SASS, here, nvdisasm 13.5 from PyPI on l27's plain W cubin: the 6 SHFL.BFLY of l and the
#  LDS.128 + LDS of the geometry lie between the last HGMMA and its WARPGROUP.DEPBAR; with
#  the two-level sum ptxas had put the second level after it. benches/prefill/s27/sass_l27.md)
D=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
END=${END:-205}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "$OUT/results.tgz" -C "$R" .; }
cd "$D" || exit 1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include PYTHONUNBUFFERED=1
mkdir -p cubins && tar xJf cubins.tar.xz -C cubins
for b in bench_prefill cuda_check; do gunzip -f $b.gz; chmod +x $b; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader > "$R/env.txt" 2>&1
el "start, $(ls cubins/cubins | wc -l) cubins"
DEF=3x64x1owghvuncafbdHQm
WV=3x64x1owghvuncafbdHQWm
FT=2x64x1owghvunctbdHQW
FO=2x64x1owghvuncbdW
FH=2x64x1owgncW
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
export MOA_CUBIN_DIR=$D/cubins/cubins
# --- 0a. smoke + same outputs (a hang here stops the timings)
timeout 30 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF,$WV --layers-only 0,21,22,27 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_v.jsonl" > "$R/compare_v.txt" 2>&1
rc_v=$?
timeout 20 ./bench_prefill plans/llama3_8b.json:8 --variants $DEF,$WV --layers-only 24,29 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_l.jsonl" > "$R/compare_l.txt" 2>&1
el "compare rc=$rc_v,$?"
grep -ho '"max_diff_vs_first":[^,]*' "$R"/compare_*.jsonl | sort | uniq -c
save
# --- 0b. correctness, in parallel: W (bf16) on both plans, the fixtures, the sanitizers
for pl in llama3_8b:8 vicuna7b:32; do n=${pl%%:*}; kv=${pl##*:}
  ( timeout 90 ./cuda_check --upstream plans/$n.json --kv-heads $kv --dtypes bf16 --prefill-variant $WV > "$R/c_W_$n.txt" 2>&1; echo "rc=$?" >> "$R/c_W_$n.txt" ) &
done
( timeout 60 ./cuda_check plans/fixture-gqa.toml --dtypes f16 --prefill-variant $FH > "$R/c_W_fixture_f16.txt" 2>&1; echo "rc=$?" >> "$R/c_W_fixture_f16.txt"
  for v in $FT $FO; do for tool in racecheck memcheck; do
    timeout 60 "$SAN" --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $v > "$R/san_${tool}_$v.txt" 2>&1; echo "rc=$?" >> "$R/san_${tool}_$v.txt"
  done; done ) &
wait
el "checks"
tail -n 2 "$R"/c_*.txt
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|^rc=" "$R"/san_*.txt | sort | uniq -c
save
# --- 1. traces of l27 (4k x 4), DEF and W
export MOA_CUBIN_DIR=$D/cubins/tr
for v in $DEF $WV; do
  timeout 25 ./bench_prefill plans/vicuna7b.json:32 --variants $v --layers-only 27 --prompts 4096 --rows 4 --reps 20 --warmups 1 \
    --trace-out "$R/trace.txt" --out "$R/trace_bench_$v.jsonl" >> "$R/trace_bench.txt" 2>&1
  el "trace $v rc=$?"
done
gzip -f "$R/trace.txt"; save
export MOA_CUBIN_DIR=$D/cubins/cubins
if [ "$rc_v" != 0 ]; then el "compare failed: no timings"; save; exit 0; fi
# --- 2. blocks beside SDPA: 4k x 4 then 16k x 1, DEF and W, A B B A
left 100 && timeout 60 python3 blocked.py --warm-s 3 --out "$R/b4k" -- $P --variants $DEF,$WV --prompts 4096 --rows 4 --reps 5 --rounds 13 --abba > "$R/b4k.txt" 2>&1
el "blocked 4k rc=$?"; save
left 30 && timeout $(( END - 6 - $(date +%s) + s )) python3 blocked.py --warm-s 2 --out "$R/b16k" -- $P --variants $DEF,$WV --prompts 16384 --rows 1 --reps 5 --rounds 7 --abba > "$R/b16k.txt" 2>&1
el "blocked 16k rc=$?"
python3 ab_report.py --skip 1 "$R/b4k" "$R/b16k" > "$R/ab.md" 2>&1
sed -n '1,12p' "$R/ab.md"
el done; save
