#!/bin/bash
# s29-tma's device call (run tool timeout_s 120), from the repository root:
#   bash .dev-s29-tma/call1.sh
# Carry .dev-s29-tma/ (benches/prefill/s29/tma/pack.sh: bench_prefill and cuda_check gzipped;
# cubins/ = both upstream plans' modules in bf16 with DEF and T, fixture-gqa and its
# 160-token-sink copy with the head_dim-64 `t` form FT (bf16)). Everything comes back as
# $OUT/results.tgz.
# (Run with binaries built at 8a3c18a, whose code is 05c9639's but for format and a clippy fix; `T`
# was removed after it, RESULTS "Session 29 (branch s29-tma)": build the binaries and cubins
# at 05c9639 to repeat it.)
#
# OUTCOME (after the call, 73 s of command; call1/): the checks as predicted (max diff 0.0 on
# the six layers, cuda_check bf16 2.063e-3 / 2.075e-3, memcheck 0 errors, racecheck 0
# hazards), the timings not: T / DEF on the `t` layers 0.998 (0.990-1.006) Vicuna-7B and
# 1.006 (0.997-1.015) Llama-3-8B at 4k x 4 (predicted ~0.985), beside the identical
# one-tile kernels' 0.997 / 1.002; T faster in 4 of 10 passes on both. Within the noise.
#
# DEF = 3x64x1owghvuncafbdHQm (main's bf16 default at head_dim 128; `t` on the narrow layers).
# T = DEF + `T`: `t`'s producer copies each query tile's Q by TMA: thread 0 arrives on the
# tile's qfull with expect_tx(48 KiB) and issues two cp.async.bulk.tensor.3d boxes {64, 1, 192}
# (128-byte swizzle = wg_off's panels) through the tensor map Arg::QMap (last parameter, by
# value), in place of 128 threads x 24 cp.async of 16 bytes; qfull counts 1 arrival; the
# consumers fence.proxy.async before their qempty arrival. The one-tile layers' kernels are
# DEF's (for_layer drops `T`): they are the A/A.
#
# MODEL (before the call). Session 28's trace of DEF at l27 (Vicuna-7B 4k x 4; SM cycles):
# period 35048 a query tile = 12 turns x ~2640 + excess ~3460. Producer: last K/V issued ->
# claim ~2520, claim -> Q issued ~2140 (set_item + item_at + 24 cp.async a thread issued
# among 12 busy consumer warps: s28 found the issue itself ~2240 without set_item), Q issued
# -> wg0's next geometry ~2810 (Q's landing ~2160 alone, then the first K/V tile's issue,
# wait_group 1, qfull). Warpgroup 0 waits ~646 for the next Q (qfull) and ~807 for its
# first K/V tile per query tile: ~1450 cycles of the period are waits on the switch's copies.
# With T: the Q issue is thread 0's ~2 instructions after set_item (~2000 cycles off the
# producer's path), so the first K/V tile is issued ~2000 cycles sooner; Q's 48 KiB move
# through the copy engine, not the 128 threads' LSU path (s28's inference: that path moves
# ~20 B/cycle, ~2400 cycles for Q); by TMA I expect ~1000-1500 cycles to land (L2/DRAM,
# beside the first K/V tile's 32 KiB of cp.async).
# Expected: wg0's two waits ~1450 -> ~400-800 cycles, the period 35048 -> ~34300 (-2%);
# T / DEF on the `t` layers 0.975-1.000 (median ~0.985) at 4k x 4, 0.985-1.000 (~0.993) at
# 16k x 1 (longer periods: the switch is a smaller share); one-tile layers 0.99-1.01 (A/A).
# Risks: TMA's Q landing under the consumers' K/V traffic no faster than cp.async (then ~1.00);
# the proxy fence in the consumers' epilogue; compute-sanitizer may not model TMA writes.
#  0. --compare T vs DEF max diff 0.0 on the six layers (same tiles; rows past a row's end
#     hold other Q now but are not stored); cuda_check bf16 with T = DEF's maxima (Llama-3-8B
#     2.063e-3, Vicuna-7B 2.075e-3); memcheck 0 errors, racecheck 0 hazards on FT (head_dim
#     64: one box of {64, 1, 128} per tile) on fixture-gqa and its 160-token-sink copy.
#  1. blocks (A B B A, 11 passes at 4k x 4, pass 0 left out) as above.
# (Cut after a refused start cost ~90 s of the 270 s budget: the blocks at 4k x 4 come before
# the checks, and 16k x 1 is left out; END=105.)
D=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
END=${END:-105}
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
TV=3x64x1owghvuncafbdHQTm
FT=2x64x1owghvunctbdHQT
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
export MOA_CUBIN_DIR=$D/cubins/cubins
# --- 0a. smoke + same outputs (a hang here stops the timings)
timeout 30 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF,$TV --layers-only 0,21,22,27 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_v.jsonl" > "$R/compare_v.txt" 2>&1
rc_v=$?
timeout 20 ./bench_prefill plans/llama3_8b.json:8 --variants $DEF,$TV --layers-only 24,29 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_l.jsonl" > "$R/compare_l.txt" 2>&1
el "compare rc=$rc_v,$?"
grep -ho '"max_diff_vs_first":[^,]*' "$R"/compare_*.jsonl | sort | uniq -c
tail -n 3 "$R"/compare_v.txt
save
if [ "$rc_v" != 0 ]; then el "compare failed: no timings"; save; exit 0; fi
# --- 1. blocks beside SDPA: 4k x 4, DEF and T, A B B A
timeout 45 python3 blocked.py --warm-s 3 --out "$R/b4k" -- $P --variants $DEF,$TV --prompts 4096 --rows 4 --reps 5 --rounds 11 --abba > "$R/b4k.txt" 2>&1
el "blocked 4k rc=$?"
python3 ab_report.py --skip 1 "$R/b4k" > "$R/ab.md" 2>&1
sed -n '1,12p' "$R/ab.md"
save
# --- 0b. correctness, in parallel: T (bf16) on both plans, the sanitizers on the fixtures
for pl in llama3_8b:8 vicuna7b:32; do n=${pl%%:*}; kv=${pl##*:}
  ( timeout $(( END - 4 - $(date +%s) + s )) ./cuda_check --upstream plans/$n.json --kv-heads $kv --dtypes bf16 --prefill-variant $TV > "$R/c_T_$n.txt" 2>&1; echo "rc=$?" >> "$R/c_T_$n.txt" ) &
done
for f in fixture-gqa fixture-gqa-sink160; do for tool in memcheck racecheck; do
  ( timeout 40 "$SAN" --tool $tool ./cuda_check plans/$f.toml --dtypes bf16 --prefill-variant $FT > "$R/san_${tool}_$f.txt" 2>&1; echo "rc=$?" >> "$R/san_${tool}_$f.txt" ) &
done; done
wait
el "checks"
tail -n 2 "$R"/c_*.txt
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|^rc=" "$R"/san_*.txt | sort | uniq -c
el done; save
