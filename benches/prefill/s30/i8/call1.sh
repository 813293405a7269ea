#!/bin/bash
# s30-i8's device call (run tool timeout_s 200), from the repository root:
#   bash .dev-s30-i8/call1.sh
# Carry .dev-s30-i8/ (benches/prefill/s30/i8/pack.sh: bench_prefill and cuda_check gzipped;
# cubins/ = both upstream plans' modules in bf16 with DEF and F, fixture-gqa and its
# 160-token-sink copy with the head_dim-64 `t` form FF (bf16); tr/ = Vicuna-7B l27's DEF and
# F, l23's DEF, Llama-3-8B l29's DEF and F kernels with benches/prefill/s30/i8/trace_patch.py's
# trace (session 28's clock64 events on blocks 0-2, plus every block's timeline on
# %globaltimer) under the plain keys). Everything comes back as $OUT/results.tgz.
# (Run with binaries and cubins built at b7e8e32; `F` was removed after it, RESULTS "Session 30
# (branch s30-i8)": build at b7e8e32 to repeat it.)
#
# OUTCOME (after the call, 128.2 s of command; call1/): the checks as predicted (max diff 0.0 on
# the six layers, cuda_check bf16 2.063e-3 / 2.075e-3, memcheck 0 errors, racecheck 0 hazards).
# Tail as predicted or smaller: imbalance 0.0127 / 0.0097 / 0.0120 (l27, l23, Llama l29), block
# ends within 8.8-9.3 us of the launch's end (median 4.9-5.3). Timings not: F / DEF on the `t`
# layers 1.154 / 1.143 at 4k x 4 (predicted ~0.993), 1.057 / 1.048 at 16k x 1. Warp 0's 192
# bulk prefetches took ~11 300 cycles before bar.sync 6 (predicted 200-400). With Q in L2,
# claim -> Q issued 2258 -> 1086 and Q issued -> next geometry 2877 -> 1106: Q's DRAM read is
# ~2900 cycles of the switch's producer path, of which warpgroup 0 waits ~660 (qfull).
#
# DEF = 3x64x1owghvuncafbdHQm (main's bf16 default at head_dim 128; `t` on the narrow layers).
# F = DEF + `F`: at the producer's loop top, warp 0 takes thread 0's claim and row check (the
# same values in every lane) and asks L2 for the claimed tile's Q rows
# (cp.async.bulk.prefetch.L2.global, one 256-byte row a lane at a time, 192 rows), then thread
# 0 waits for the Q tile's release and publishes the tile as before; the Q copy follows after
# bar.sync 6, set_item, `b`'s geometry stores. Consumers and the one-tile kernels unchanged.
#
# MODEL (before the call). Layers over 1.15 x ideal in the engine form in session 29's call
# (4k x 4; ms over the line): Vicuna-7B l2 0.019, l21 0.004 (one-tile), l22 0.007, l23 0.035,
# l25 0.039, l26 0.009, l27 0.073, l28 0.048, l29 0.014, l30 0.053, l31 0.043; Llama-3-8B l24
# 0.0004 (one-tile), l29 0.015. As a share of the layer's kernel: l22 1.1%, l26 1.4%, l29 2.5%,
# l2 3.3%, Llama l29 3.2%, l23 6.5%, l25 7.7%, l31 8.5%, l28 9.9%, l30 11.5%, l27 17.8%.
# Session 28's trace of DEF at Vicuna l27 (SM cycles a query tile): period 35048 = 12 rounds
# x 2642 + excess 3460; warpgroup 0 waits 648 for the next Q (qfull) and 850 for its first
# K/V tile: ~1500 cycles = 4.3% of the period, ~0.83 us a tile at ~1.8 GHz, ~18 us of l27's
# 412 us (21.3 tiles a block: 2816 tiles over 132 blocks). Removing every switch wait would
# not bring l27 (17.8% over) nor l23-l31 (6.5-11.5%) under the line; l22, l26, maybe l29 and
# Llama l29 are within reach of 1-3%.
# The gap candidates: (a) Q's landing: the producer's claim (ev 20) -> Q issued (21) 2138,
# Q issued -> warpgroup 0's next geometry 2808, of which Q's own landing ~2000 (DRAM: Q is
# read once per (head, tile)); (b) the first K/V tile (850: it is handed over only once the
# second is issued and the first has landed); (c) the tail: 2816 tiles / 132 blocks = 21.33,
# so with equal tiles 44 blocks run 22 and 88 run 21 (3% of the launch idle); `f` puts the
# short tiles (the rows' first, band cut by the row start) last, so less.
# Predicted trace (DEF, l27): block ends spread over ~0.3-1 tile (5-18 us) before the launch's
# end, imbalance (1 - mean busy / span) 0.02-0.04; claim -> claim ~19-20 us.
# F: the prefetch goes out ~300-600 cycles before the first Q cp.async and ~2000 before the
# last (the loop top's bar.sync, set_item, the stores, the issue of 24 copies a thread); if
# Q's DRAM read is what warpgroup 0 waits for, Q issued -> next geometry 2808 -> ~2100-2400,
# warpgroup 0's qfull wait 648 -> ~200-400, the period -1..-2%; warp 0's extra set_item and 6
# prefetches a lane (~200-400 cycles) delay bar.sync 6 by as much.
# Expected: F / DEF on the `t` layers 0.985-1.005, median ~0.993 at 4k x 4 (one-tile layers
# 0.99-1.01: the A/A); if session 24's `L` (the next K/V tile prefetched to L2: no gain) and
# session 29's `T` (Q by TMA: tie) are the guide, ~1.000. Cells: +0..2 (l22, l26).
#  0. --compare F vs DEF max diff 0.0 on the six layers; cuda_check bf16 with F = DEF's maxima
#     (Llama-3-8B 2.063e-3, Vicuna-7B 2.075e-3); memcheck 0 errors, racecheck 0 hazards (FF
#     on fixture-gqa and its 160-token-sink copy).
#  1. traces (l27 DEF, F; l23 DEF; Llama l29 DEF, F): tail and switch as above.
#  2. blocks (A B B A, 11 passes at 4k x 4, pass 0 left out); 16k x 1 (7 passes) if time is left.
D=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
END=${END:-150}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "$OUT/results.tgz" -C "$R" .; }
cd "$D" || exit 1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include PYTHONUNBUFFERED=1
mkdir -p cubins && tar xJf cubins.tar.xz -C cubins
for b in bench_prefill cuda_check; do gunzip -f $b.gz; chmod +x $b; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader > "$R/env.txt" 2>&1
el "start, $(ls cubins/cubins | wc -l) cubins, $(ls cubins/tr | wc -l) traced files"
DEF=3x64x1owghvuncafbdHQm
FV=3x64x1owghvuncafbdHQFm
FF=2x64x1owghvunctbdHQF
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
export MOA_CUBIN_DIR=$D/cubins/cubins
# --- 0a. smoke + same outputs (a hang here stops the timings)
timeout 30 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF,$FV --layers-only 0,21,22,27 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_v.jsonl" > "$R/compare_v.txt" 2>&1
rc_v=$?
timeout 20 ./bench_prefill plans/llama3_8b.json:8 --variants $DEF,$FV --layers-only 24,29 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_l.jsonl" > "$R/compare_l.txt" 2>&1
el "compare rc=$rc_v,$?"
grep -ho '"max_diff_vs_first":[^,]*' "$R"/compare_*.jsonl | sort | uniq -c
save
# --- 1. traces (4k x 4)
export MOA_CUBIN_DIR=$D/cubins/tr
for x in "vicuna7b.json:32 27 $DEF" "vicuna7b.json:32 27 $FV" "vicuna7b.json:32 23 $DEF" "llama3_8b.json:8 29 $DEF" "llama3_8b.json:8 29 $FV"; do
  set -- $x
  timeout 25 ./bench_prefill plans/$1 --variants $3 --layers-only $2 --prompts 4096 --rows 4 --reps 20 --warmups 1 \
    --trace-out "$R/trace.txt" --out "$R/trace_bench.jsonl" >> "$R/trace_bench.txt" 2>&1
  el "trace $x rc=$?"
done
python3 tail_report.py "$R/trace.txt" > "$R/tail.md" 2>&1; cat "$R/tail.md"
python3 tail_report.py --strip "$R/trace.txt" > "$R/trace_s.txt" && python3 trace_report.py "$R/trace_s.txt" > "$R/trace.md" 2>&1
grep -E "^## |period|excess|released -> next|geometry -> s0|prod " "$R/trace.md"
rm -f "$R/trace_s.txt"; gzip -f "$R/trace.txt" "$R/trace_bench.jsonl"; save
export MOA_CUBIN_DIR=$D/cubins/cubins
if [ "$rc_v" != 0 ]; then el "compare failed: no timings"; save; exit 0; fi
# --- 2. blocks beside SDPA: 4k x 4, DEF and F, A B B A
timeout 50 python3 blocked.py --warm-s 3 --out "$R/b4k" -- $P --variants $DEF,$FV --prompts 4096 --rows 4 --reps 5 --rounds 11 --abba > "$R/b4k.txt" 2>&1
el "blocked 4k rc=$?"
python3 ab_report.py --skip 1 "$R/b4k" > "$R/ab.md" 2>&1
python3 forms_report.py --skip 1 --ab $DEF,$FV "$R/b4k" > "$R/forms_F.md" 2>&1
sed -n '1,5p' "$R/forms_F.md"; sed -n '1,20p' "$R/ab.md"
save
# --- 0b. correctness, in parallel: F (bf16) on both plans, the sanitizers on the fixtures
for pl in llama3_8b:8 vicuna7b:32; do n=${pl%%:*}; kv=${pl##*:}
  ( timeout 60 ./cuda_check --upstream plans/$n.json --kv-heads $kv --dtypes bf16 --prefill-variant $FV > "$R/c_F_$n.txt" 2>&1; echo "rc=$?" >> "$R/c_F_$n.txt" ) &
done
for f in fixture-gqa fixture-gqa-sink160; do for tool in memcheck racecheck; do
  ( timeout 50 "$SAN" --tool $tool ./cuda_check plans/$f.toml --dtypes bf16 --prefill-variant $FF > "$R/san_${tool}_$f.txt" 2>&1; echo "rc=$?" >> "$R/san_${tool}_$f.txt" ) &
done; done
wait
el "checks"
tail -n 2 "$R"/c_*.txt
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|^rc=" "$R"/san_*.txt | sort | uniq -c
save
# --- 3. 16k x 1 if there is time
left 45 && timeout $(( END - 4 - $(date +%s) + s )) python3 blocked.py --warm-s 2 --out "$R/b16k" -- $P --variants $DEF,$FV --prompts 16384 --rows 1 --reps 5 --rounds 7 --abba > "$R/b16k.txt" 2>&1
el "blocked 16k rc=$?"
[ -d "$R/b16k" ] && python3 forms_report.py --skip 1 --ab $DEF,$FV "$R/b4k" "$R/b16k" > "$R/forms_F.md" 2>&1 && sed -n '1,6p' "$R/forms_F.md"
el done; save
