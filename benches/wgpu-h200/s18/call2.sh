#!/bin/bash
# Session 18, branch s18-wgpu, call 2: call1.sh cut to what ~165 s of device time holds
# after two refused starts (90 + 72 s of this helper's 330): the engine's A/B only.
#   END=80 bash .dev-s18-wgpu/call2.sh     (run tool timeout_s >= END + 12)
# Carry as call1.sh (benches/wgpu-h200/s18/pack.sh): wpe.gz, mg.gz, gl/, this script.
#
# 1. The engine's step with MOA_WGPU_X16=all (its tokens/s and parity in the main run):
#    SmolLM2 shape, random weights (seed 7), 16 x 4096, moa-50, 64 greedy tokens,
#    --profile 5, MOA_WGPU_COOP_ATTN=0; then over the same caches (--sg-variants
#    KSPLIT:GROUPS:DIAG:X16, parity of each real one first, every profile after an
#    untimed one): def all def all down | d4 d3 (def = X16 0, main's default; all = the
#    gate/up product writes SwiGLU in f16, the down product reads it and writes an f16
#    copy of the residual stream that the next layer's QKV product reads; down = only
#    the first part; d4 = the K loop's weight loads only, d3 = its loads only).
# 2. tests/model_gpu.rs on the H200, as END leaves room: swiglu_in_the_gate_up_epilogue,
#    tiny_model_matches_cpu_reference_dense_and_sparse, weights_over_the_binding_limit_
#    are_split_by_rows (the three session 17 did not run on the device).
#
# PREDICTIONS: as call1.sh's header (d4: qkv 3.8-4.3, out 3.4-3.8, down 3.9-4.5 against
#   d3's 5.5 / 4.0-4.6 / 5.8-6.0; all: qkv -0.3..-0.6, down -0.5..-1.0 us, step
#   -25..-50 us (1.705 -> 1.66-1.68 ms); down: down as all, qkv as def; parity ~0.05,
#   argmax 3/3).
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-80}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=/tmp/s18w; rm -rf "$R"; mkdir -p "$R"
for b in wpe mg; do gunzip -c "$D/$b.gz" > "/tmp/$b-s18w" && chmod +x "/tmp/$b-s18w" || { el "no $b.gz"; exit 1; }; done
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export MOA_WGPU_COOP_ATTN=0
mkdir -p /work && ln -sfn "$PWD" /work/wt-s18-wgpu
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml --prompt 4096"
V="-:-:0:0;-:-:0:all;-:-:0:0;-:-:0:all;-:-:0:down;-:-:4:0;-:-:3:0"
el "engine"; MOA_WGPU_X16=all timeout $(( END - 14 )) /tmp/wpe-s18w $A --parity 24 --sg-variants "$V" > "$R/engine.txt" 2>&1; el "engine rc=$?"
if left $(( END - 8 )); then el "tests"
  timeout $(( END - $(date +%s) + s - 1 )) /tmp/mg-s18w --test-threads 1 swiglu_in_the_gate_up_epilogue tiny_model_matches_cpu_reference_dense_and_sparse weights_over_the_binding_limit_are_split_by_rows > "$R/tests.txt" 2>&1; el "tests rc=$?"
  grep -E "^test |test result|panicked" "$R/tests.txt" | head -10; fi
python3 - "$R" <<'PY' | tee "$R/summary.txt"
import re, sys, os
R = sys.argv[1]
p = os.path.join(R, "engine.txt")
name, rows, cur = "main (x16 all)", [], {}
for line in open(p):
    m = re.match(r"(variant .*) decode step per dispatch kind", line)
    if m or line.startswith("decode step per dispatch kind"):
        if cur: rows.append((name, cur))
        name, cur = (m.group(1) if m else "main (x16 all)"), {}
        continue
    m = re.match(r"\s+(\w+):\s+\d+ dispatches,\s+([\d.]+) us device \(\s*([\d.]+) us/dispatch", line)
    if m: cur[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    m = re.search(r"(variant .* parity|^parity): .*max \|logit err\| ([\d.]+).*argmax equal (\S+);.*logits (\S+)", line)
    if m: print(f"{line.split(':')[0]}: err {m.group(2)} argmax {m.group(3)} greedy {m.group(4)}")
    if "tok/s" in line: print(line.strip()[:150])
if cur: rows.append((name, cur))
print(f"{'variant':44s} {'step':>8s} {'attn':>6s} {'merge':>6s} {'qkv':>6s} {'out':>6s} {'gateup':>6s} {'down':>6s} {'head':>6s} {'probe':>6s}")
for n, c in rows:
    g = lambda k, i=1: f"{c[k][i]:.2f}" if k in c else "-"
    print(f"{n:44s} {g('step',0):>8s} {g('attention'):>6s} {g('merge'):>6s} {g('qkv'):>6s} {g('out'):>6s} {g('gate_up'):>6s} {g('down'):>6s} {g('head'):>6s} {g('probe'):>6s}")
PY
grep -h "decode products" "$R"/engine.txt | head -1 | cut -c1-500
tar czf "${OUT:-/tmp}/s18-wgpu-call2.tgz" -C "$R" . && cp "$R/summary.txt" "${OUT:-/tmp}/s18-wgpu-summary2.txt"
el done
