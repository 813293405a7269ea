#!/bin/bash
# Session 28, s28-gemm, call 1 (one H200 through Vulkan): the prefill products' whole-tile
# write-out (coop_linear.wgsl: fragments stored straight to `out` with coopStoreT, the
# residual loaded as the accumulators' initial value; MOA_WGPU_COOP_DIRECT, default 1)
# against session 27's scratch write-out (every fragment through a 16 x 16 scratch, two
# barriers each, scalar f32 stores; DIRECT 0) and DIRECT 2 (also the 64 x 32 subgroup
# blocks of edge tiles that lie inside `out`), in one binary.
#   END=170 bash .dev-s28-gemm/call1.sh   (run tool timeout_s 200; carry [".dev-s28-gemm"],
#   filled by benches/wgpu-h200/s28/gemm/pack.sh)
# 1. wdb regs-gemm: the driver's registers / local / workgroup memory, DIRECT 1, 0, 2.
# 2. wp --gemm 32768 10: the CPU checks (edge shapes, aligned and unaligned outputs: the
#    aligned ones run whole tiles direct) of default, scratch, edge, checked; then default
#    (DIRECT 1) against scratch (0), edge (2), checked, noload, nomma, nowrite, alternated
#    default v v default, outputs of stride N + 8.
# 3. wpe SmolLM2 shape, random weights, 16 x 4096, moa-50, --new 8, --profile-prefill,
#    one process a run: A1 (DIRECT=0) B1 (=1) C1 (=2) with parity at 136 tokens (one whole
#    128-token tile of every product in the check's pass), then C2 B2 A2 without.
#
# MODEL (per prefill pass of 8 x 4096 = 32 768 tokens, 30 layers; s27-gemm call 3):
#   products: qkv 0.89 ms, out 0.57 (f32 x; 0.86 in the engine with f16 x and its group),
#   gate/up 2.61, down 1.07 a layer; 'nowrite' (no write-out at all) 0.45-0.48 / 0.29 /
#   1.37 / 0.73: the write-out is ~half of each. The direct store still writes the f32
#   output (qkv 126 MB, out 75, gate/up 403, down 75 MB a layer: at ~3.5 TB/s 0.036 /
#   0.022 / 0.115 / 0.022 ms) and reads the residual (out, down: 75 MB, 0.02 ms) but
#   without 16 barriers and the scratch round trip. Edge tiles keep the scratch: qkv's
#   960 = 7.5 column tiles and out/down's 576 = 4.5, so 1 of 8 and 1 of 5 column tiles.
#   So: qkv ~0.55-0.62 ms, out ~0.36-0.42, gate/up ~1.5-1.7, down ~0.80-0.88 (microbench,
#   whole tiles dominate); ~43 -> 60-70 TFLOP/s on gate/up against the 64-66 ceiling.
#   Non-product passes (bandwidth model, 4 TB/s): 2 RMSNorms 0.08 ms, RoPE/cache write
#   0.05, SwiGLU 0.15 (403 MB read, 201 MB written) a layer: ~8.5 ms a pass of 536, of
#   which folding SwiGLU into gate/up's epilogue would save ~6 ms (1%): not built here.
#   Registers: the epilogue's cs scratch stays (edge tiles); registers ~163 both ways;
#   48 KiB of workgroup memory (NVIDIA's Vulkan limit: K stages of 64 would need 72 KiB).
# PREDICTIONS: checks 0 error (inputs exact in f16) on every shape, aligned or not;
#   regs-gemm: DIRECT=1 within +-16 registers of DIRECT=0, no local memory, 49152 B;
#   gemm: default/scratch qkv 0.89 -> 0.58 ms (1.45-1.6x), out 0.57 -> 0.38, gate/up
#   2.6 -> 1.6 (1.5-1.7x), down 1.07 -> 0.84; A/A within 1%. edge (2) against default:
#   gate/up equal (no edge tiles at 3072), qkv / out / down 3-8% faster (their edge
#   column tile's 64 inner columns direct; 960 - 896 = 576 - 512 = 64).
#   Engine pass: qkv 26.7 -> 18-20 ms, out 25.8 -> 17-21, mlp 96.4 -> 62-72, attention
#   ~387 (unchanged), step 536 -> 490-505 ms (-6..-9%); prefill tok/s 53-60k -> 57-66k.
#   Parity at 136 tokens: max |logit err| ~0.05 in both, argmax 3/3; start-up checks
#   (edge: 0.0e0; whole tiles: 0.0e0) in B's describe line.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s28gemm1; rm -rf "$R"; mkdir -p "$R"
END=${END:-170}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s28-gemm-call1.tgz" -C "$R" .; }
left() { [ $(( $(date +%s) - s )) -lt "$END" ]; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wp wpe wdb; do [ -f "$D/$b.gz" ] && gunzip -c "$D/$b.gz" > /tmp/$b && chmod +x /tmp/$b; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
el start
[ -x /tmp/wdb ] && { timeout 30 /tmp/wdb regs-gemm > "$R/regs.txt" 2>&1; el "regs rc=$?"; }
timeout 45 /tmp/wp --gemm 32768 10 > "$R/gemm.txt" 2>&1; el "gemm rc=$?"; save
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 8 --plan $P --profile-prefill"
one() {
  IFS=: read -r n direct par cap <<< "$1"
  left || { el "$n skipped (END)"; return; }
  MOA_WGPU_COOP_DIRECT=$direct timeout "$cap" /tmp/wpe $A --parity "$par" > "$R/$n.txt" 2>&1
  el "$n rc=$?"; save
}
for r in A1:0:136:60 B1:1:136:50 C1:2:136:50 C2:2:0:30 B2:1:0:30 A2:0:0:30; do one "$r"; done
{
  cat "$R/regs.txt" 2>/dev/null
  grep -E "^check|^gemm|^chosen|^[a-z]+: " "$R/gemm.txt"
  for n in A1 B1 C1 C2 B2 A2; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "$n: $(grep -o -E 'prefill: [^;]*' "$t" | head -1) | $(grep -o -E 'max .logit err. [0-9.e-]+|argmax equal [0-9/]+' "$t" | tr '\n' ' ')"
    grep -A9 "prefill pass 1 per dispatch kind" "$t" | sed "s/^/  $n /"
    grep -h -o -E "prefill products: [^;]*|warning[^\n]*|Error[^\n]*" "$t" | head -2
  done
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"
save
