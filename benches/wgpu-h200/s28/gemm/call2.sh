#!/bin/bash
# Session 28, s28-gemm, call 2 — PREPARED, NOT RUN by s28-gemm (its device budget went
# to call 1): what call 1 could not separate. Binaries of 0a30565 (the direct write-out,
# DIRECT 2, as default; the split prefill profile; the as-the-engine product bench).
#   END=110 bash .dev-s28-gemm/call2.sh   (run tool timeout_s 140, ~85 s more for a cold
#   start; carry [".dev-s28-gemm"], filled by benches/wgpu-h200/s28/gemm/pack.sh with
#   BIN = the release wgpu_products and wgpu_products_engine of 0a30565, as wp2 / wpe2)
# 1. wp2 --gemm 32768 10: the products as the engine runs them (a residual on out and down
#    only, out's x in f16), each first against session 27's bench layout (a residual on
#    every product, f32 x), then the variants (scratch, whole, checked, noload, nomma,
#    nowrite), after 1 s untimed (call 1's first shape ran during the clock ramp).
# 2. wpe2 SmolLM2 shape, random weights, 16 x 4096, moa-50, --new 8, --profile-prefill,
#    one process a run: C1 (default, parity 136) A1 (MOA_WGPU_COOP_DIRECT=0) A2 C2; the
#    profile now has rows norm, qkv, rope, attention, out, gate_up, swiglu, down.
# 3. if time is left: G (default + MOA_WGPU_COOP_ATTN_GROUP=2, s27-pattn's group form).
# PREDICTIONS (call 1: the engine's qkv group 0.88-0.90 ms a layer, out 0.635, MLP 2.91;
#   the bench with residuals: qkv 0.654, out 0.39 (f32 x), gate/up 1.83, down 0.86):
#   gemm as the engine: qkv 0.55-0.62 ms (no residual), out 0.55-0.65 (f16 x: the engine's
#   0.635; against 0.39 for f32 x: the f16 loads, 8 bytes a thread, are the suspect),
#   gate/up 1.65-1.80, down 0.86. Profile per pass: norm 3-6 ms (60 dispatches), qkv
#   17-19, rope 3-8, out 19, gate_up 50-54, swiglu 4.5-6, down 26, attention 388;
#   step 520 (C) and 538 (A) as in call 1, A/A and C/C within 0.3%.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s28gemm2; rm -rf "$R"; mkdir -p "$R"
END=${END:-110}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s28-gemm-call2.tgz" -C "$R" .; }
left() { [ $(( $(date +%s) - s )) -lt "$END" ]; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wp2 wpe2; do gunzip -c "$D/$b.gz" > /tmp/$b && chmod +x /tmp/$b; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
el start
timeout 45 /tmp/wp2 --gemm 32768 10 > "$R/gemm.txt" 2>&1; el "gemm rc=$?"; save
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 8 --plan $P --profile-prefill"
one() {
  IFS=: read -r n direct group par cap <<< "$1"
  left || { el "$n skipped (END)"; return; }
  MOA_WGPU_COOP_DIRECT=$direct MOA_WGPU_COOP_ATTN_GROUP=$group timeout "$cap" /tmp/wpe2 $A \
    --parity "$par" > "$R/$n.txt" 2>&1
  el "$n rc=$?"; save
}
for r in C1:2:0:136:60 A1:0:0:0:30 A2:0:0:0:30 C2:2:0:0:30 G:2:2:0:45; do one "$r"; done
{
  grep -E "^check|^gemm|^chosen|^[a-z]+ \(x f16" "$R/gemm.txt"
  for n in C1 A1 A2 C2 G; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "$n: $(grep -o -E 'prefill: [^;]*' "$t" | head -1) | $(grep -o -E 'max .logit err. [0-9.e-]+|argmax equal [0-9/]+' "$t" | tr '\n' ' ')"
    grep -A15 "prefill pass 1 per dispatch kind" "$t" | sed "s/^/  $n /"
    grep -h -o -E "prefill products: [^;]*|prefill attention: [^;]*|warning[^\n]*|Error[^\n]*" "$t" | head -3
  done
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"
save
