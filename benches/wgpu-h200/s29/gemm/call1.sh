#!/bin/bash
# Session 29, s29-gemm, call 1 (one H200 through Vulkan): the prefill products' 16-byte
# words (w and f16 x: 8 halves a load), SwiGLU in the matrix-unit gate/up product's
# epilogue and every tile's accumulators from the residual, old (main 5f17848, "A") against
# new (s29-gemm, "B") side by side.
#   END=215 bash .dev-s29-gemm/call1.sh   (run tool timeout_s 250; carry [".dev-s29-gemm"],
#   filled by benches/wgpu-h200/s29/gemm/pack.sh: wpeA/wpA = release wgpu_products_engine /
#   wgpu_products of main 5f17848, wpeB/wpB = of s29-gemm, model_gpu = its release test
#   binary, gzipped; the Vulkan loader debs)
# 1. wpe --like smollm2-135m --rows 16 --prompt 4096 --new 8 --profile-prefill
#    --prefill-reps 3 --plan moa-50 --plan dense, one process a run: A1 (parity 136) B1
#    (parity 136) B2 A2 (NVIDIA's shader cache on /tmp/nv: A1 compiles the attention cold).
# 2. wpB --gemm 32768 10 with GEMM_VARIANTS=noload: edge-shape checks (K 100 and 36: not
#    multiples of 8; M 70, 130, 257, 300: not multiples of the tile; f16 and f32 x), the
#    SwiGLU product's checks, each product as the engine runs it, gate/up against SwiGLU in it.
# 3. model_gpu's prefill tests (filter "prefill": chunked vs one pass bound back to 1e-5).
# 4. wpA --gemm 32768 10 (the old products side by side with 2.) if time is left and wpA was
#    carried (it was not: the carry limit, 64 MiB with the checkout, left no room).
# MODEL / PREDICTIONS (lead call of s28, moa-50, a pass of 8 x 4096: norm 3.1, qkv 15.7,
#   rope 9.1, attention 156.6, out 18.7, gate_up 47.0, swiglu 14.5, down 24.5 = 286.9 ms):
#   - out: x f16 in 16-byte words runs at f32 x's rate: 0.62 -> 0.38-0.42 ms a layer,
#     18.7 -> 11.5-12.5 ms a pass (-6 to -7).
#   - gate_up + swiglu: the SwiGLU pass (14.5 ms: 603 MB a layer at 1.26 TB/s) is gone;
#     the gate/up epilogue goes through the scratch (4 fragment pairs, 16 barriers, half
#     the bytes written): 47.0 -> 46-52 ms; MLP -9 to -15 ms.
#   - w in 16-byte words (every product): qkv, down, gate_up 0-5% each (they are
#     load-bound, but their w loads were 8-byte words: 2 a thread a stage now, 4 before).
#   - pass 286.9 -> 265-272 ms (moa-50), 368 -> 346-353 (dense); tok/s 113k -> 119-123k.
#   - the bench: out (x f16) 0.65 -> 0.38-0.42 ms (55 TFLOP/s); gate/up 1.73 ms, SwiGLU in
#     it 1.0-1.15x of the plain product's time; every check 0 (the SwiGLU checks <= 1e-6
#     relative: the device's exp); start-up checks 0, SwiGLU's <= 1e-6; parity as before
#     (0.05, 3/3); model_gpu prefill tests pass, f16 no split-K chunked vs one pass 0.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s29gemm1; rm -rf "$R"; mkdir -p "$R"
END=${END:-215}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s29-gemm-call1.tgz" -C "$R" .; }
left() { [ $(( $(date +%s) - s )) -lt "$END" ]; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wpeA wpeB wpA wpB model_gpu; do [ -f "$D/$b.gz" ] && gunzip -c "$D/$b.gz" > /tmp/$b && chmod +x /tmp/$b; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
el start
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 8 --profile-prefill --prefill-reps 3 --plan $P --plan dense"
one() {
  IFS=: read -r n bin par cap <<< "$1"
  left || { el "$n skipped (END)"; return; }
  timeout "$cap" /tmp/$bin $A --parity "$par" > "$R/$n.txt" 2>&1
  el "$n rc=$?"; save
}
for r in A1:wpeA:136:70 B1:wpeB:136:60 B2:wpeB:0:40 A2:wpeA:0:40; do one "$r"; done
left && { GEMM_VARIANTS=noload timeout 40 /tmp/wpB --gemm 32768 10 > "$R/gemmB.txt" 2>&1; el "gemmB rc=$?"; save; }
left && { timeout 45 /tmp/model_gpu prefill --test-threads 12 --nocapture > "$R/model_gpu.txt" 2>&1; el "model_gpu rc=$?"; save; }
[ -x /tmp/wpA ] && left && { timeout 40 /tmp/wpA --gemm 32768 10 > "$R/gemmA.txt" 2>&1; el "gemmA rc=$?"; save; }
{
  for n in A1 B1 B2 A2; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "== $n"
    grep -o -E "== smollm2-135m [^:]*|prefill products: [^;]*|prefill attention: [^;]*|loaded in [0-9.]+ s|max .logit err. [0-9.e-]+|argmax equal [0-9/]+|prefill: [^;]*|warm prefill: .*|  attention: .*|       step: .*" "$t" | cut -c1-260
    grep -A15 "prefill pass 1 per dispatch kind" "$t" | sed "s/^/  $n /"
  done
  grep -E "^test |test result|panicked|chunked vs one pass" "$R/model_gpu.txt" | cut -c1-240
  for g in gemmB gemmA; do echo "== $g"; grep -E "^check|^gemm|^chosen|^[a-z]+ \(x f16" "$R/$g.txt"; done
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"
save
