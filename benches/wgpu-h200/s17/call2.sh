#!/bin/bash
# Session 17, branch s17-wgpu, call 2: the new default of the decode products on subgroups
# (one column group a workgroup at KSPLIT 4 and 8 on subgroups of 32; KSPLIT 8 for
# products of at most 160 column groups where it saves a K trip) against the earlier one
# (MOA_WGPU_SG_GROUPS=2), in the engine's step.
#   bash .dev-s17-wgpu/call2.sh        (END=130 by default; run tool timeout_s >= END + 20)
# Carry as call1.sh (benches/wgpu-h200/s17/pack.sh): wpe.gz, mg.gz, gl/, this script.
#
# 1. new: SmolLM2 shape, random weights, 16 x 4096, moa-50, 64 greedy tokens, --profile 5,
#    MOA_WGPU_COOP_ATTN=0, parity; then in the same process over the same caches,
#    --sg-variants old new old new old new (KSPLIT:GROUPS:DIAG -:2:0 / -:-:0), each
#    profile after an untimed one (clocks), parity of both first.
# 2. old: the same run with MOA_WGPU_SG_GROUPS=2 (tokens/s of the earlier default).
# 3. tests/model_gpu.rs subgroup_products (the new default at subgroup 32 against the CPU).
#
# PREDICTIONS (written before the call, from call 1's per-kind rows):
#   new against old: qkv 6.6 against 6.9-7.1, out 4.8 against 5.5-5.6, down 6.9 against
#   8.0-8.2 us; device step -55..-80 us (1.80-1.83 -> 1.74-1.77 ms), tokens/s +3..+5%.
#   Parity ~0.048-0.050, argmax 3/3.
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-130}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=/tmp/s17w2; rm -rf "$R"; mkdir -p "$R"
for b in wpe mg; do gunzip -c "$D/$b.gz" > "/tmp/$b-s17w" && chmod +x "/tmp/$b-s17w" || { el "no $b.gz"; exit 1; }; done
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export MOA_WGPU_COOP_ATTN=0
mkdir -p /work && ln -sfn "$PWD" /work/wt-s17-wgpu
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml --prompt 4096"
V="-:2:0;-:-:0;-:2:0;-:-:0;-:2:0;-:-:0"
if left $(( END - 70 )); then el "new + variants"; timeout 70 /tmp/wpe-s17w $A --parity 24 --sg-variants "$V" > "$R/new.txt" 2>&1; el "rc=$?"; fi
if left $(( END - 25 )); then el "old"; MOA_WGPU_SG_GROUPS=2 timeout 25 /tmp/wpe-s17w $A --parity 0 > "$R/old.txt" 2>&1; el "rc=$?"; fi
if left $(( END - 20 )); then el "tests"
  timeout $(( END - $(date +%s) + s - 3 )) /tmp/mg-s17w --test-threads 1 subgroup_products > "$R/tests.txt" 2>&1; el "tests rc=$?"
  grep -E "^test |test result" "$R/tests.txt"; fi
python3 - "$R" <<'PY' | tee "$R/summary.txt"
import re, sys, os
R = sys.argv[1]
for f in ["new.txt", "old.txt"]:
    p = os.path.join(R, f)
    if not os.path.exists(p): continue
    name, rows, cur = "main", [], {}
    for line in open(p):
        m = re.match(r"(variant .*|chunk \d+) decode step per dispatch kind", line)
        if m or line.startswith("decode step per dispatch kind"):
            if cur: rows.append((name, cur))
            name, cur = (m.group(1) if m else "main"), {}
            continue
        m = re.match(r"\s+(\w+):\s+\d+ dispatches,\s+([\d.]+) us device \(\s*([\d.]+) us/dispatch", line)
        if m: cur[m.group(1)] = (float(m.group(2)), float(m.group(3)))
        m = re.search(r"(variant .* parity|^parity): .*max \|logit err\| ([\d.]+).*argmax equal (\S+);.*logits (\S+)", line)
        if m: print(f"{f} {line.split(':')[0]}: err {m.group(2)} argmax {m.group(3)} greedy {m.group(4)}")
        if "tok/s" in line or "dispatches/step" in line: print(f"{f}: {line.strip()[:160]}")
    if cur: rows.append((name, cur))
    print(f"{f}: {'variant':32s} {'step':>8s} {'attn':>6s} {'merge':>6s} {'qkv':>6s} {'out':>6s} {'gateup':>6s} {'down':>6s} {'head':>6s} {'probe':>6s}")
    for n, c in rows:
        g = lambda k, i=1: f"{c[k][i]:.2f}" if k in c else "-"
        print(f"{f}: {n:32s} {g('step',0):>8s} {g('attention'):>6s} {g('merge'):>6s} {g('qkv'):>6s} {g('out'):>6s} {g('gate_up'):>6s} {g('down'):>6s} {g('head'):>6s} {g('probe'):>6s}")
PY
tar czf "${OUT:-/tmp}/s17-wgpu-call2.tgz" -C "$R" . && cp "$R/summary.txt" "${OUT:-/tmp}/s17-wgpu-summary2.txt"
el done
