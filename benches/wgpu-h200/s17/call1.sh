#!/bin/bash
# Session 17, branch s17-wgpu, call 1 (one H200 through Vulkan).
#   bash .dev-s17-wgpu/call1.sh        (END=200 by default; run tool timeout_s >= END + 20)
# Carry `.dev-s17-wgpu` (filled by benches/wgpu-h200/s17/pack.sh): wpe.gz (release
# examples/wgpu_products_engine), wdb.gz (release examples/wgpu_decode_bench), mg.gz
# (release tests/model_gpu.rs), gl/ (Vulkan loader debs), this script.
#
# What runs, in order, each step under `timeout` and started only while END leaves room:
# 1. regs: the driver's registers (VK_KHR_pipeline_executable_properties) of
#    matvec_sg.wgsl at (KSPLIT, column groups) 4:2 (today's default on 32 lanes), 4:1,
#    8:1, DIAG 0 and 3; and of layer 6's decode forms (SmolLM2 moa-50): the scalar
#    default, the decode on subgroups, its loads-only twin, the pipelined form (1 item)
#    and the pipelined loads-only twins (1 and 2 items a workgroup).
# 2. The engine's step: SmolLM2 shape, random weights (seed 7), 16 x 4096, moa-50, 64
#    greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0, then in the same process over the
#    same caches (--sg-variants: pipelines rebuilt, parity per DIAG-0 variant, the step
#    profiled again): def g1 g1k8 g1k4 def g1 g1k8 g1k4 | d3 g1d3 g1k8d3 d1 g1d1 | def g1
#    (KSPLIT:GROUPS:DIAG; def = auto:auto:0 = KSPLIT 4 and 2 column groups a workgroup for
#    qkv/out/down, 72 workgroups for the 576-column products; g1 = 1 group a workgroup:
#    144 workgroups, KSPLIT auto = 4 for qkv/out, 8 for down (K/4 = 384 >= 8 x 32)).
#    Before the variants, the default products over new requests whose decode work list
#    has fixed chunks (--chunks 128,0,384: 0 = the work-list model's per-layer choice,
#    ~256 slots): one tile an item (twice the items) and three.
# 3. tests/model_gpu.rs (release): the subgroup product tests (every KSPLIT and column
#    group choice against the CPU reference at subgroup 32) and every_option_lavapipe_runs.
#
# PREDICTIONS (written before the call):
#   def:  device step 1.80-1.85 ms; qkv 6.6-7.0, out 5.4-5.6, down 7.6-8.1 us.
#   g1:   qkv 6.3-7.0 (0..-0.5), out 4.5-5.0 (-0.5..-1.0), down 5.8-6.8 (-1..-2 us): the
#         576-column products on 144 workgroups instead of 72 (and down's 3 trips halved);
#         step -45..-105 us (0.94-0.98x). Parity ~0.05, argmax 3/3.
#   g1k4: qkv/out as g1, down 6.5-7.3.   g1k8: qkv/out 0..0.5 worse than g1, down as g1.
#   d3 (loads only, default grid): qkv 5.5-6.0, out 4.6-5.0, down 6.0-7.0: the grid and the
#         loads ~80% of a product, the multiply-adds ~1 us. d1 (no K loop) 3.4-4.4.
#   regs: matvec_sg 100-130 a lane whatever KSPLIT/groups; DIAG 3 fewer (no 80 sums).
#         decode: scalar ~102 (s15), sg ~100, sg read 60-80, pipe1 110-128, pipe1 read >= sg
#         read + 30 (the loads-early forms' unexplained loss: registers).
#   chunks (the scalar decode, 22.0-22.3 us at the model's choice): 128 -> 21-25 (the
#         loads-only twin took 22.4 at 128 against 20.8, s16 call 2: no gain expected),
#         384 -> 23-28 (fewer items than 2 an SM); merge 4.5-5.5 at 128 (twice the partials).
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-200}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=/tmp/s17w; rm -rf "$R"; mkdir -p "$R"
for b in wpe wdb mg; do gunzip -c "$D/$b.gz" > "/tmp/$b-s17w" && chmod +x "/tmp/$b-s17w" || { el "no $b.gz"; exit 1; }; done
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export MOA_WGPU_COOP_ATTN=0
# The test binary has CARGO_MANIFEST_DIR=/work/wt-s17-wgpu baked in.
mkdir -p /work && ln -sfn "$PWD" /work/wt-s17-wgpu
el "regs"
( timeout 20 /tmp/wdb-s17w regs-products 4:2,4:1,8:1 0
  timeout 20 /tmp/wdb-s17w regs-products 4:2,4:1,8:1 3
  P=plans/smollm2-135m-moa-50.toml
  timeout 10 /tmp/wdb-s17w regs $P - 6 | sed 's/^/scalar: /'
  MOA_WGSL_SG_DECODE=1 timeout 10 /tmp/wdb-s17w regs $P - 6 | sed 's/^/sg: /'
  MOA_WGSL_SG_DECODE=read timeout 10 /tmp/wdb-s17w regs $P - 6 | sed 's/^/sg-read: /'
  MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_PIPE=1 timeout 10 /tmp/wdb-s17w regs $P - 6 | sed 's/^/pipe1: /'
  MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_PIPE=1 timeout 10 /tmp/wdb-s17w regs $P - 6 | sed 's/^/pipe1-read: /'
  MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_PIPE=2 timeout 10 /tmp/wdb-s17w regs $P - 6 | sed 's/^/pipe2-read: /'
) > "$R/regs.txt" 2>&1
grep -E "regs (matvec|layer)" "$R/regs.txt" | sed -E 's/(exec0=[^,]*, )?//' | cut -c1-230
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan plans/smollm2-135m-moa-50.toml --prompt 4096"
V="-:-:0;-:1:0;8:1:0;4:1:0;-:-:0;-:1:0;8:1:0;4:1:0;-:-:3;-:1:3;8:1:3;-:-:1;-:1:1;-:-:0;-:1:0"
if left $(( END - 150 )); then el "engine"; timeout 150 /tmp/wpe-s17w $A --parity 24 --chunks 128,0,384 --sg-variants "$V" > "$R/engine.txt" 2>&1; el "engine rc=$?"; fi
if left $(( END - 35 )); then el "tests"
  timeout $(( END - $(date +%s) + s - 3 )) /tmp/mg-s17w --test-threads 1 subgroup_products every_option_lavapipe_runs > "$R/tests.txt" 2>&1; el "tests rc=$?"
  grep -E "^test |test result" "$R/tests.txt"; fi
# Summary: per profile (the main run, then each variant): kind us/dispatch.
python3 - "$R" <<'PY' | tee "$R/summary.txt"
import re, sys, os
R = sys.argv[1]
for f in ["engine.txt"]:
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
    if cur: rows.append((name, cur))
    print(f"{f}: {'variant':32s} {'step':>8s} {'attn':>6s} {'merge':>6s} {'qkv':>6s} {'out':>6s} {'gateup':>6s} {'down':>6s} {'head':>6s} {'probe':>6s}")
    for n, c in rows:
        g = lambda k, i=1: f"{c[k][i]:.2f}" if k in c else "-"
        print(f"{f}: {n:32s} {g('step',0):>8s} {g('attention'):>6s} {g('merge'):>6s} {g('qkv'):>6s} {g('out'):>6s} {g('gate_up'):>6s} {g('down'):>6s} {g('head'):>6s} {g('probe'):>6s}")
PY
grep -hE "tok/s|dispatches/step" "$R"/engine*.txt
tar czf "${OUT:-/tmp}/s17-wgpu-call1.tgz" -C "$R" . && cp "$R/summary.txt" "${OUT:-/tmp}/s17-wgpu-summary.txt"
el done
