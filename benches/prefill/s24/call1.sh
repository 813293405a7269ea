#!/bin/bash
# s24-prefill's device call (run tool timeout_s 300), from the repository root:
#   bash .dev-s24-prefill/call1.sh
# Carry .dev-s24-prefill/ (benches/prefill/s24/pack.sh: bench_prefill, cuda_check and the
# cuda_engine test binary gzipped; cubins/ = both upstream plans' modules in bf16 (DEF, G) and
# f16 (default), the fixtures' (default, and the 2x64 HQ / HQG forms at head_dim 64); tr/ =
# Vicuna-7B l27's DEF and G kernels with session 23's clock64 trace under the plain keys).
# Everything comes back as $OUT/results.tgz.
#
# DEF = 3x64x1owghvuncafbdHQm: main's bf16 default at head_dim 128 from this branch on
# (session 23's HQ; `t` on the narrow layers). G = DEF + `G`: the producer's thread 0 claims
# the next query tile with the second-to-last K/V copy and sets its geometry while the last
# K/V tile lands; the other producer threads read it from shared memory (no set_item).
#
# PREDICTIONS (before the call):
#  0. tests/cuda_engine.rs passes (its models have head_dim 64: no HQ there, a smoke test of
#     the engine at the new defaults); cuda_check bf16 default = session 23's HQ maxima
#     (Llama-3-8B 2.063e-3, Vicuna-7B 2.075e-3), f16 unchanged, fixtures pass; memcheck 0
#     errors and racecheck 0 hazards on fixture-gqa with 2x64x1owghvunctbdHQ and ...HQG;
#     --compare G and the old default (bdm) vs DEF: max diff 0.0 on the six layers;
#     cuda_check bf16 with G = DEF's maxima.
#  1. trace of l27 (4k x 4): with G the producer's last K/V issue -> claim barrier falls from
#     ~2500 to ~1500 cycles (the last tile's landing only) and claim -> Q issued from ~2200 to
#     ~700 (item_at and the 12 Q copies); warpgroup 0's waits for the next tile's Q (~700)
#     and first K/V tile (~900) mostly go: excess over the rounds ~3100 -> ~1800-2300.
#  2. In blocks (ABBA, 9 passes at 4k x 4, 5 at 16k x 1, pass 0 left out): G / DEF on the `t`
#     layers 0.975-0.985 at 4k x 4 (~0.5-0.9 us of ~20 us a query tile), 0.99-1.00 at 16k x 1;
#     one-tile layers 1.00 (the same kernels: the A/A). Engine form (ab_report): DEF gives
#     ~20/31/28/32 of 32 within 1.15 x ideal (session 23's HQ); G brings in Vicuna-7B 4k l24
#     and l2 (0.30, 0.43 us to go), maybe l22 (0.67) and Llama-3-8B 4k l29 (0.58), Vicuna-7B
#     16k l28 (0.18): ~22/32/29/32.
D=$(cd "$(dirname "$0")" && pwd)
ROOT=$PWD
R=$OUT/r; mkdir -p "$R"
s=$(date +%s)
END=${END:-270}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "$OUT/results.tgz" -C "$R" .; }
# The test binary reads the repository through its build path.
[ -e /work/wt-s24-prefill ] || { mkdir -p /work && ln -s "$ROOT" /work/wt-s24-prefill; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
cd "$D" || exit 1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include PYTHONUNBUFFERED=1
mkdir -p cubins && tar xJf cubins.tar.xz -C cubins
for b in bench_prefill cuda_check cuda_engine; do gunzip -f $b.gz; chmod +x $b; done
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader > "$R/env.txt" 2>&1
el "start, $(ls cubins/cubins | wc -l) cubins"
DEF=3x64x1owghvuncafbdHQm
G=3x64x1owghvuncafbdHQGm
OLD=3x64x1owghvuncafbdm
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
export MOA_CUBIN_DIR=$D/cubins/cubins
# --- 0a. smoke + same outputs (a hang here stops the timings)
timeout 30 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF,$G,$OLD --layers-only 0,21,22,27 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_v.jsonl" > "$R/compare_v.txt" 2>&1
rc_v=$?
timeout 20 ./bench_prefill plans/llama3_8b.json:8 --variants $DEF,$G,$OLD --layers-only 24,29 --prompts 4096 --rows 4 --reps 1 --compare --out "$R/compare_l.jsonl" > "$R/compare_l.txt" 2>&1
el "compare rc=$rc_v,$?"
grep -ho '"max_diff_vs_first":[^,]*' "$R"/compare_*.jsonl | sort | uniq -c
save
# --- 0b. correctness, in parallel: the defaults (bf16, f16), G (bf16), fixtures, sanitizer
for pl in llama3_8b:8 vicuna7b:32; do n=${pl%%:*}; kv=${pl##*:}
  ( timeout 100 ./cuda_check --upstream plans/$n.json --kv-heads $kv --dtypes bf16,f16 > "$R/c_def_$n.txt" 2>&1; echo "rc=$?" >> "$R/c_def_$n.txt" ) &
  ( timeout 100 ./cuda_check --upstream plans/$n.json --kv-heads $kv --dtypes bf16 --prefill-variant $G > "$R/c_G_$n.txt" 2>&1; echo "rc=$?" >> "$R/c_G_$n.txt" ) &
done
( for f in fixture-gqa fixture-mha; do timeout 60 ./cuda_check plans/$f.toml > "$R/c_fix_$f.txt" 2>&1; echo "rc=$?" >> "$R/c_fix_$f.txt"; done ) &
( for v in 2x64x1owghvunctbdHQ 2x64x1owghvunctbdHQG; do
    for tool in memcheck racecheck; do
      timeout 60 "$SAN" --tool $tool ./cuda_check plans/fixture-gqa.toml --dtypes bf16 --prefill-variant $v > "$R/san_${tool}_$v.txt" 2>&1; echo "rc=$?" >> "$R/san_${tool}_$v.txt"
    done
  done ) &
( cd /work/wt-s24-prefill && timeout 100 "$D/cuda_engine" --test-threads 1 --skip real_smollm2 > "$R/cuda_engine.txt" 2>&1; echo "rc=$?" >> "$R/cuda_engine.txt" ) &
wait
el "checks"
tail -n 2 "$R"/c_*.txt; grep -E "^test result|FAILED|^rc=" "$R/cuda_engine.txt"
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|^rc=" "$R"/san_*.txt | sort | uniq -c
save
# --- 1. traces of l27 (4k x 4), DEF and G
export MOA_CUBIN_DIR=$D/cubins/tr
for v in $DEF $G; do
  timeout 25 ./bench_prefill plans/vicuna7b.json:32 --variants $v --layers-only 27 --prompts 4096 --rows 4 --reps 20 --warmups 1 \
    --trace-out "$R/trace.txt" --out "$R/trace_bench_$v.jsonl" >> "$R/trace_bench.txt" 2>&1
  el "trace $v rc=$?"
done
gzip -f "$R/trace.txt"; save
export MOA_CUBIN_DIR=$D/cubins/cubins
if [ "$rc_v" != 0 ]; then el "compare failed: no timings"; save; exit 0; fi
# --- 2. blocks beside SDPA: 4k x 4 then 16k x 1, DEF and G, ABBA
left 75 && timeout 70 python3 blocked.py --warm-s 3 --out "$R/b4k" -- $P --variants $DEF,$G --prompts 4096 --rows 4 --reps 5 --rounds 9 --abba > "$R/b4k.txt" 2>&1
el "blocked 4k rc=$?"; save
left 35 && timeout $(( END - 6 - $(date +%s) + s )) python3 blocked.py --warm-s 2 --out "$R/b16k" -- $P --variants $DEF,$G --prompts 16384 --rows 1 --reps 5 --rounds 5 --abba > "$R/b16k.txt" 2>&1
el "blocked 16k rc=$?"
python3 ab_report.py --skip 1 "$R/b4k" "$R/b16k" > "$R/ab.md" 2>&1
sed -n '1,12p' "$R/ab.md"
el done; save
