#!/bin/bash
# s28-prefill's device call (run tool timeout_s 230), from the repository root:
#   bash .dev-s28-prefill/call1.sh
# Carry .dev-s28-prefill/ (benches/prefill/s28/pack.sh: bench_prefill and cuda_check gzipped;
# cubins/ = both upstream plans' modules in bf16 with DEF and N, fixture-gqa and its
# 160-token-sink copy with the head_dim-64 `t` form FN (bf16); tr/ = Vicuna-7B l27's DEF and
# N kernels with benches/prefill/s28/trace_patch.py's clock64 trace under the plain keys).
# Everything comes back as $OUT/results.tgz.
# (Run at 9fa0112; `N` was removed after it, RESULTS "Session 28 (branch s28-prefill": build
# the binaries and cubins at 9fa0112 to repeat it.)
#
# OUTCOME (after the call, 136.5 s of command; call1/): the checks as predicted (max diff 0.0
# on the six layers, cuda_check bf16 2.063e-3 / 2.075e-3, 0 errors, 0 hazards), the timings
# not: N / DEF on the `t` layers 1.016 / 1.022 at 4k x 4, 1.015 / 1.015 at 16k x 1
# (Llama-3-8B / Vicuna-7B; every `t` layer >= 0.999; one-tile A/A 0.999-1.002). Trace of l27:
# period 35048 -> 37714 (predicted ~33800), excess 3460 -> 5522 (predicted ~2200); last K/V
# issued -> take_next's barrier 842 (predicted 100-300: thread 0's claim_next took ~2430,
# not ~1500, and the last K/V copy went out ~1030 late), -> Q issued 2244 (predicted
# 400-700: the 24 cp.async a thread issue as slowly as before), Q issued -> wg0's next
# geometry 5104 (in the predicted 4000-6000, but because the Q copy landed ~4450 after
# issue beside the last K/V tile, not because the consumers' own path set it).
#
# DEF = 3x64x1owghvuncafbdHQm (main's bf16 default at head_dim 128; `t` on the narrow layers).
# N = DEF + `N`: `t`'s producer prepares query tile j + 1 during tile j. Thread 0 claims it
# (atomicAdd) after tile j's third-to-last K/V copy, checks it against its row, waits for
# the consumers' release of its Q tile and writes its number and geometry (`b`'s slot) after
# the second-to-last; right after the last K/V copy all 128 producer threads read them
# (bar.sync 6), issue the Q copy (one commit group), wait for the last K/V tile only
# (wait_group 1) and hand it over, then go straight on to tile j + 1's first K/V copy; Q is
# handed over (qfull) by the first wait that covers its group. Consumers byte-identical;
# the one-tile layers' kernels are DEF's (for_layer drops `N`): they are the A/A.
#
# MODEL (before the call). Session 27's trace of DEF at l27 (Vicuna-7B, 4k x 4, 48 tile
# switches; SM cycles): the period a query tile 35112 = 12 turns x 2650 (a round) + excess
# 3436. Producer: last K/V issued -> claim 2506 (H's wait for the last K/V tile to land,
# ~2000-2500 under load, then thread 0's row check: two row_start loads, and bar.sync 6),
# claim -> Q issued 2170 (set_item: pf_order's divisions, row_start again, derive_item;
# thread 0's 5 geometry stores; the 12 Q cp.async of each thread issued among 12 busy
# consumer warps), Q issued -> warpgroup 0's next geometry 2864 (Q's landing ~2000, the
# first K/V tile's issue after its slot's wait, wait_group 1, the qfull arrival). So qfull
# of tile j + 1 completes ~7300 cycles after tile j's last K/V copy, and its first K/V tile
# ~8200. Warpgroup 0's path from its last turn to its next section-0 turn is 5156: P.V 564,
# epilogue 2344, band-end release 534, **released -> next geometry 642 (qfull)**,
# **geometry -> s0 tile landed 864**, s0 landed -> turn 172; the last warpgroup also waits
# for the next qfull before it hands its last turn on (event 8).
# Which of it can overlap the previous tile: the claim (atomic round trip ~1000), the row
# check and the geometry (thread 0 alone, during tile j's last K/V copies, while the ring is
# ahead: a slot frees every ~2900 cycles at l27 and the producer waits for it), the Q copy's
# issue (~600: item_at + 12 cp.async) right after the last K/V copy, its landing under the
# last K/V tile's. With N: Q issued ~600 after the last K/V copy, landed ~3000 after it
# (~4300 earlier than DEF), the next first K/V tile issued as soon as its slot frees
# (~2500 after the last copy, ~2500 earlier). Warpgroup 0's two waits (642 + 864) shrink to
# the latency of a completed barrier (~150 each): its path 5156 -> ~3900 (its own work:
# P.V + epilogue + release + geometry + s0 ~3800), the last warpgroup's qfull wait gone.
# Predicted: period 35112 -> ~33800 (33300-35100), excess 3436 -> ~2200; prod last K/V
# issued -> claim (N: -> take_next's barrier) ~100-300, claim -> Q issued ~400-700, Q issued
# -> wg0 next geometry ~4000-6000 (now the consumers' own path, not the copy's).
# Per layer: ~1300 cycles (~0.75 us) a query tile is 3.7% of l27's period and 1.5-3% of the
# other `t` layers' (longer bands: more sections a tile). Risks: the claim commits a block
# to its next tile ~2 K/V copies earlier (session 22's `x`, a tile earlier with a second
# change, lost 1.1-1.5%); warp 0's ~1500-cycle check stalls its K/V copies when the ring is
# not ahead (session 24's `G` lost that way at the tile's end, where N no longer puts it).
#  0. --compare N vs DEF max diff 0.0 on the six layers (same tiles, same consumer code);
#     cuda_check bf16 with N = DEF's maxima (Llama-3-8B 2.063e-3, Vicuna-7B 2.075e-3);
#     memcheck 0 errors, racecheck 0 hazards (FN on fixture-gqa and its 160-token sink copy,
#     whose short rows give query tiles of 1-2 K/V tiles: the claim and check in one copy).
#  1. trace of l27: as above.
#  2. blocks (A B B A, 11 passes at 4k x 4, 7 at 16k x 1, pass 0 left out): N / DEF on the
#     `t` layers 0.96-1.00 (median ~0.98) at 4k x 4; 0.985-1.00 at 16k x 1; one-tile layers
#     (A/A) 0.99-1.01. Cells: Vicuna-7B 4k +1..3 (l24 needs 0.30 us a tile, l2 0.43, l22
#     0.67), Llama-3-8B 4k l29 (0.58) maybe; Vicuna-7B 16k l28 (0.18) maybe.
D=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
END=${END:-195}
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
NV=3x64x1owghvuncafbdHQNm
FN=2x64x1owghvunctbdHQN
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
export MOA_CUBIN_DIR=$D/cubins/cubins
# --- 0a. smoke + same outputs (a hang here stops the timings)
timeout 30 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF,$NV --layers-only 0,21,22,27 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_v.jsonl" > "$R/compare_v.txt" 2>&1
rc_v=$?
timeout 20 ./bench_prefill plans/llama3_8b.json:8 --variants $DEF,$NV --layers-only 24,29 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_l.jsonl" > "$R/compare_l.txt" 2>&1
el "compare rc=$rc_v,$?"
grep -ho '"max_diff_vs_first":[^,]*' "$R"/compare_*.jsonl | sort | uniq -c
save
# --- 0b. correctness, in parallel: N (bf16) on both plans, the sanitizers on the fixtures
for pl in llama3_8b:8 vicuna7b:32; do n=${pl%%:*}; kv=${pl##*:}
  ( timeout 90 ./cuda_check --upstream plans/$n.json --kv-heads $kv --dtypes bf16 --prefill-variant $NV > "$R/c_N_$n.txt" 2>&1; echo "rc=$?" >> "$R/c_N_$n.txt" ) &
done
( for f in fixture-gqa fixture-gqa-sink160; do for tool in racecheck memcheck; do
    timeout 60 "$SAN" --tool $tool ./cuda_check plans/$f.toml --dtypes bf16 --prefill-variant $FN > "$R/san_${tool}_$f.txt" 2>&1; echo "rc=$?" >> "$R/san_${tool}_$f.txt"
  done; done ) &
wait
el "checks"
tail -n 2 "$R"/c_*.txt
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|^rc=" "$R"/san_*.txt | sort | uniq -c
save
# --- 1. traces of l27 (4k x 4), DEF and N
export MOA_CUBIN_DIR=$D/cubins/tr
for v in $DEF $NV; do
  timeout 25 ./bench_prefill plans/vicuna7b.json:32 --variants $v --layers-only 27 --prompts 4096 --rows 4 --reps 20 --warmups 1 \
    --trace-out "$R/trace.txt" --out "$R/trace_bench_$v.jsonl" >> "$R/trace_bench.txt" 2>&1
  el "trace $v rc=$?"
done
gzip -f "$R/trace.txt"; save
export MOA_CUBIN_DIR=$D/cubins/cubins
if [ "$rc_v" != 0 ]; then el "compare failed: no timings"; save; exit 0; fi
# --- 2. blocks beside SDPA: 4k x 4 then 16k x 1, DEF and N, A B B A
left 95 && timeout 62 python3 blocked.py --warm-s 3 --out "$R/b4k" -- $P --variants $DEF,$NV --prompts 4096 --rows 4 --reps 5 --rounds 11 --abba > "$R/b4k.txt" 2>&1
el "blocked 4k rc=$?"; save
left 30 && timeout $(( END - 6 - $(date +%s) + s )) python3 blocked.py --warm-s 2 --out "$R/b16k" -- $P --variants $DEF,$NV --prompts 16384 --rows 1 --reps 5 --rounds 7 --abba > "$R/b16k.txt" 2>&1
el "blocked 16k rc=$?"
python3 ab_report.py --skip 1 "$R/b4k" "$R/b16k" > "$R/ab.md" 2>&1
sed -n '1,12p' "$R/ab.md"
el done; save
