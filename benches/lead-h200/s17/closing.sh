#!/bin/bash
# Lead's check of session 17's merged main on the H200 in one call (≈ 300 s of command;
# run tool timeout_s 380). Carry filled by benches/lead-h200/s17/pack-closing.sh.
#  1. CUDA prefill, s17-prefill's open question: `m` (4 query tiles of one (query head, row)
#     pair launched together) against the default in BLOCKS (every layer of both upstream
#     plans with DEF, then every layer with m, twice), with the SM clock and power sampled
#     by nvidia-smi every 200 ms: the interleaved --abba A/B of call 2 ran both variants at
#     one clock, which hides what m's 3x fewer DRAM reads buy (the clock).
#     PREDICTION: Vicuna-7B 4k x 4 near-dense layers 0.95-0.97x in blocks (one launch
#     0.946 by ncu), the plan's sum 0.97x; Llama-3-8B 0.99x; the clock during m blocks
#     higher by 20-60 MHz. If m wins every layer beyond the A/A spread it becomes the
#     default (its cuda_check bf16/f16 and sanitizers passed in s17-prefill's call 2).
#  2. wgpu: s17-wgpu's call 2 (the products' new default against MOA_WGPU_SG_GROUPS=2,
#     A/B/A/B in one process; predicted step -55..-80 us).
#  3. tests/model_gpu.rs of the merged main on the H200's Vulkan (the products' default
#     changed): every test, against the CPU reference.
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=$OUT/lead; mkdir -p "$R"
ROOT=$PWD
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
# --- 1. prefill blocks
(
cd "$D/pf" || exit 1
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
mkdir -p cubins && tar xJf cubins.tar.xz -C cubins; gunzip -f bench_prefill.gz; chmod +x bench_prefill
P="plans/vicuna7b.json:32 plans/llama3_8b.json:8"; DEF=3x64x1owghvuncaf
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv,noheader -lms 200 > "$R/smi.csv" 2>&1 &
SMI=$!
el "warm-up"; timeout 60 ./bench_prefill plans/vicuna7b.json:32 --variants $DEF --layers-only 0,1 --prompts 4096 --rows 4 --reps 2 --rounds 1 --out "$R/warm.jsonl" > "$R/warm.log" 2>&1; el "warm rc=$?"
for b in D1 M1 D2 M2; do
  case $b in D*) V=$DEF;; M*) V=${DEF}m;; esac
  echo "$b $(date +%s.%N)" >> "$R/blocks.txt"
  timeout 45 ./bench_prefill $P --variants $V --prompts 4096 --rows 4 --reps 5 --rounds 2 --out "$R/blk_$b.jsonl" > "$R/blk_$b.log" 2>&1; el "block $b rc=$?"
done
echo "end $(date +%s.%N)" >> "$R/blocks.txt"
kill $SMI
python3 - "$R" <<'PY' | tee "$R/blocks.md"
import json, sys, statistics as st, datetime
R = sys.argv[1]
def load(b):
    d = {}
    try:
        for l in open(f"{R}/blk_{b}.jsonl"):
            r = json.loads(l); d.setdefault((r["plan"], r["layer"]), []).append(r["moa_ms"])
    except FileNotFoundError: pass
    return {k: min(v) for k, v in d.items()}
B = {b: load(b) for b in ["D1", "M1", "D2", "M2"]}
keys = sorted(set(B["D1"]) & set(B["M1"]))
for plan in sorted({k[0] for k in keys}):
    ks = [k for k in keys if k[0] == plan]
    def ratio(a, b): return [B[b][k] / B[a][k] for k in ks if k in B[a] and k in B[b]]
    for name, a, b in [("M1/D1", "D1", "M1"), ("M2/D2", "D2", "M2"), ("D2/D1 (A/A)", "D1", "D2"), ("M2/M1 (A/A)", "M1", "M2")]:
        r = ratio(a, b)
        if r: print(f"{plan} {name}: n={len(r)} median {st.median(r):.3f} min {min(r):.3f} max {max(r):.3f} sum {sum(B[b][k] for k in ks if k in B[a] and k in B[b]) / sum(B[a][k] for k in ks if k in B[a] and k in B[b]):.3f}")
    print(plan, "per layer M/D (mean of the two pairs):", " ".join(f"{k[1]}:{st.mean([B['M1'][k]/B['D1'][k]] + ([B['M2'][k]/B['D2'][k]] if k in B['D2'] and k in B['M2'] else [])):.3f}" for k in ks))
# clock and power per block from nvidia-smi
marks = [l.split() for l in open(f"{R}/blocks.txt")]
def ts(x): return float(x)
rows = []
for l in open(f"{R}/smi.csv"):
    p = [x.strip() for x in l.split(",")]
    try:
        t = datetime.datetime.strptime(p[0], "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp()
        rows.append((t, float(p[1].split()[0]), float(p[3].split()[0])))
    except Exception: pass
for (b, t0), (_, t1) in zip(marks, marks[1:]):
    sel = [r for r in rows if ts(t0) <= r[0] < ts(t1)]
    if sel: print(f"block {b}: {len(sel)} samples, SM clock median {st.median(r[1] for r in sel):.0f} MHz, power median {st.median(r[2] for r in sel):.0f} W")
PY
)
el "prefill done"
# --- 2. wgpu: s17-wgpu's call 2
if left 150; then END=130 bash "$D/w/call2.sh" > "$R/wgpu-call2.txt" 2>&1; el "wgpu call2 rc=$?"; tail -30 "$R/wgpu-call2.txt"
  [ -d /tmp/s17w2 ] && tar czf "$R/wgpu-call2.tgz" -C /tmp s17w2; fi
# --- 3. model_gpu (merged main)
if left 300; then
  gunzip -c "$D/mg.gz" > /tmp/mg-lead; chmod +x /tmp/mg-lead
  ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/w/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  cd "$ROOT"; timeout $(( 300 - $(date +%s) + s + 40 )) /tmp/mg-lead --test-threads 1 > "$R/model_gpu.txt" 2>&1
  echo "model_gpu rc=$?"; grep -E "^test |test result|panicked" "$R/model_gpu.txt" | tail -40; fi
el done
tar czf "$OUT/lead.tgz" -C "$OUT" lead
