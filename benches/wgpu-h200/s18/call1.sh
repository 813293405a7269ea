#!/bin/bash
# Session 18, branch s18-wgpu, call 1 (one H200 through Vulkan): what bounds the decode
# products' loads (x or weights), and x in f16 for the down and QKV products.
#   END=140 bash .dev-s18-wgpu/call1.sh     (run tool timeout_s >= END + 15)
# Carry `.dev-s18-wgpu` (filled by benches/wgpu-h200/s18/pack.sh): wpe.gz (release
# examples/wgpu_products_engine), wdb.gz (release examples/wgpu_decode_bench), mg.gz
# (release tests/model_gpu.rs), gl/ (Vulkan loader debs), this script.
#
# What runs, in order, each step under `timeout` and started only while END leaves room
# (cut to fit after a refused start cost 90 s of this helper's 330):
# 1. The engine's step: SmolLM2 shape, random weights (seed 7), 16 x 4096, moa-50, 64
#    greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0 (main's defaults), then over the
#    same caches (--sg-variants KSPLIT:GROUPS:DIAG:X16, parity of each real one first,
#    every profile after an untimed one): def down all def all k8all | d3 d4 d5 | all def
#    (X16: 0 = every activation f32; down = the gate/up product writes SwiGLU in f16 and
#    the down product reads it; all = down + the down product writes an f16 copy of the
#    residual stream that the next layer's QKV product reads; d3 = the K loop's loads
#    only, d4 = its weight loads only, d5 = its x loads only; k8all = KSPLIT 8 for every
#    subgroup product, i.e. QKV at 8 with x in f16: s17's QKV at 8 lost to its 151
#    registers, two waves; f16 x holds half the load registers).
# 2. tokens/s, processes of their own: MOA_WGPU_X16=all, then the default.
# 3. tests/model_gpu.rs (release) on the H200: the three session 17 did not run on the
#    device (swiglu_in_the_gate_up_epilogue, tiny_model_matches_cpu_reference_dense_and_
#    sparse, weights_over_the_binding_limit_are_split_by_rows) and every_option_lavapipe_
#    runs (with the three X16 variants: gate/up's f16 output on matrix units here).
# 4. regs: matvec_sg.wgsl at 4:1 and 8:1 (KSPLIT:GROUPS), DIAG 4 (weights only).
#
# PREDICTIONS (written before the call; s17 lead call: qkv 6.2, out 4.7, gate/up 7.7,
#   down 6.6 us, step 1.705-1.709 ms; s17 DIAG 3 at g1: qkv 5.5, out 4.0-4.6, down 5.8-6.0,
#   DIAG 1 2.6-3.5):
#   d4 (weights only): qkv 3.8-4.3, out 3.4-3.8, down 3.9-4.5 (x the larger part of the
#     loads: each WG reads 16 rows x K of x, 8.8 MB a qkv, 14.2 MB a down through L2,
#     against 1.1 / 1.8 MB of weights); d5 (x only) within 0.3 of d3.
#   down: down 6.6 -> 5.6-6.1 (x 14.2 -> 7.1 MB), gate/up 7.7 +-0.2; step -15..-30 us.
#   all:  as down, and qkv 6.2 -> 5.6-5.9 (x 8.8 -> 4.4 MB), down +0..+0.2 (the copy's
#     writes); step -25..-50 us (1.705 -> 1.66-1.68 ms). Parity ~0.05 (+0.005), argmax 3/3.
#   k8all: qkv 5.4-6.2 if f16 x brings the RMSNorm form under 128 registers, else ~7.
#   tokens/s: all +1.5..+3% over default.
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-140}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=/tmp/s18w; rm -rf "$R"; mkdir -p "$R"
for b in wpe wdb mg; do gunzip -c "$D/$b.gz" > "/tmp/$b-s18w" && chmod +x "/tmp/$b-s18w" || { el "no $b.gz"; exit 1; }; done
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export MOA_WGPU_COOP_ATTN=0
# The test binary has CARGO_MANIFEST_DIR=/work/wt-s18-wgpu baked in.
mkdir -p /work && ln -sfn "$PWD" /work/wt-s18-wgpu
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml --prompt 4096"
V="-:-:0:0;-:-:0:down;-:-:0:all;-:-:0:0;-:-:0:all;8:1:0:all;-:-:3:0;-:-:4:0;-:-:5:0;-:-:0:all;-:-:0:0"
if left $(( END - 85 )); then el "engine"; timeout 85 /tmp/wpe-s18w $A --parity 24 --sg-variants "$V" > "$R/engine.txt" 2>&1; el "engine rc=$?"; fi
own() {  # name, MOA_WGPU_X16
  if left $(( END - 22 - 18 )); then el "own $1"; MOA_WGPU_X16=$2 timeout 22 /tmp/wpe-s18w $A --parity 0 --profile 0 > "$R/own-$1.txt" 2>&1; el "rc=$?"; grep -h "tok/s" "$R/own-$1.txt" | cut -c1-120; fi
}
own all1 all; own def1 0
if left $(( END - 15 )); then el "tests"
  timeout $(( END - $(date +%s) + s - 2 )) /tmp/mg-s18w --test-threads 1 swiglu_in_the_gate_up_epilogue tiny_model_matches_cpu_reference_dense_and_sparse weights_over_the_binding_limit_are_split_by_rows every_option_lavapipe_runs > "$R/tests.txt" 2>&1; el "tests rc=$?"
  grep -E "^test |test result|panicked" "$R/tests.txt" | head -20; fi
if left $(( END - 10 )); then el "regs"; timeout 8 /tmp/wdb-s18w regs-products 4:1,8:1 4 > "$R/regs.txt" 2>&1
  grep -E "^regs matvec" "$R/regs.txt" | sed -E 's/(exec0=[^,]*, )?//' | cut -c1-200; fi
python3 - "$R" <<'PY' | tee "$R/summary.txt"
import re, sys, os
R = sys.argv[1]
for f in ["engine.txt"] + sorted(x for x in os.listdir(R) if x.startswith("own-")):
    p = os.path.join(R, f)
    if not os.path.exists(p): continue
    name, rows, cur = "main", [], {}
    for line in open(p):
        m = re.match(r"(variant .*) decode step per dispatch kind", line)
        if m or line.startswith("decode step per dispatch kind"):
            if cur: rows.append((name, cur))
            name, cur = (m.group(1) if m else "main"), {}
            continue
        m = re.match(r"\s+(\w+):\s+\d+ dispatches,\s+([\d.]+) us device \(\s*([\d.]+) us/dispatch", line)
        if m: cur[m.group(1)] = (float(m.group(2)), float(m.group(3)))
        m = re.search(r"(variant .* parity|^parity): .*max \|logit err\| ([\d.]+).*argmax equal (\S+);.*logits (\S+)", line)
        if m: print(f"{f} {line.split(':')[0]}: err {m.group(2)} argmax {m.group(3)} greedy {m.group(4)}")
        if "tok/s" in line: print(f"{f}: {line.strip()[:150]}")
    if cur: rows.append((name, cur))
    if not rows: continue
    print(f"{f}: {'variant':44s} {'step':>8s} {'attn':>6s} {'merge':>6s} {'qkv':>6s} {'out':>6s} {'gateup':>6s} {'down':>6s} {'head':>6s} {'probe':>6s}")
    for n, c in rows:
        g = lambda k, i=1: f"{c[k][i]:.2f}" if k in c else "-"
        print(f"{f}: {n:44s} {g('step',0):>8s} {g('attention'):>6s} {g('merge'):>6s} {g('qkv'):>6s} {g('out'):>6s} {g('gate_up'):>6s} {g('down'):>6s} {g('head'):>6s} {g('probe'):>6s}")
PY
grep -h "decode products" "$R"/engine.txt | head -2 | cut -c1-400
tar czf "${OUT:-/tmp}/s18-wgpu-call1.tgz" -C "$R" . && cp "$R/summary.txt" "${OUT:-/tmp}/s18-wgpu-summary.txt"
el done
