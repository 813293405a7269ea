#!/bin/bash
# Session 30, s30-gemm, call 1 (one H200 through Vulkan): the prefill products' stage stores
# (MOA_WGPU_COOP_STAGING), default "1,0" (session 29's kernel: one f16 store a half) against
# the stagings s11 s21 s22 s41, then the engine with the best of them, A B B A.
#   END=165 bash .dev-s30-gemm/call1.sh   (run tool timeout_s 185; carry [".dev-s30-gemm"],
#   filled by benches/wgpu-h200/s30/gemm/pack.sh: wp / wpe = release wgpu_products /
#   wgpu_products_engine of s30-gemm e810369, model_gpu = its release test binary, all
#   checked with `strings | grep -c piece_h8_2`; pick.py; the Vulkan loader .debs)
# 1. wp --gemm 32768 10 with GEMM_VARIANTS=noload,s11,s21,s22,s41: every build checked on
#    the edge shapes (K 100, 36; M 70, 130, 257, 300; aligned and not; f32 and f16 x), the
#    SwiGLU product with each staging checked and timed, each product with each staging
#    A B B A, and f16 x with each staging against the default's f32 x.
# 2. pick.py: the staging with the lowest weighted time (engine ms a pass per product).
# 3. wpe --like smollm2-135m --rows 16 --prompt 4096 --new 2 --profile-prefill
#    --prefill-reps 3 --plan moa-50 --plan dense, one process a run: A1 (default, cold
#    NVIDIA shader cache on /tmp/nv) B1 (the pick, --parity 136) B2 A2.
# 4. model_gpu's prefill tests with MOA_WGPU_COOP_STAGING = the pick (uses of
#    WgpuEngine::new read it), if time is left.
# MODEL (coop_linear.wgsl: 128 x 128 tiles, 8 warps, K stages of 32 double-buffered, next
#   stage's words already fetched into registers before the MMAs: the software pipelining
#   issue 12 asks for is in place since session 27; 48 KiB of workgroup memory, ~160
#   registers -> 1 workgroup an SM; qkv at M 32768: 2048 workgroups = 15.5 waves x 18 stages
#   in 0.55 ms -> ~2.0 us a stage, ~1.0 us without loads and stores (noload)):
#   - bytes staged a stage: x 128x32 f32 = 16 KiB (f16 x 8 KiB), w 128x32 f16 = 8 KiB; at
#     65 TFLOP/s that is ~1.6 TB/s from L2 into 132 SMs: not a bandwidth wall.
#   - stores of a stage into workgroup memory (banks.py, rows of 80 bytes): a warp's scalar
#     f16 stores of 8-half words take 32 wavefronts a word (ideal 4), of f32 x words 12
#     (ideal 2). A stage an SM: 8 warps x (2 w words x 32 + 4 x words x 12) = 896 wavefronts
#     (f16 x, out: 1024) beside the fragments' 384 (8 warps x 2 k-steps x 6 fragments x 4):
#     ~900 of the ~3500 cycles a stage. s22 (vec2<f16> stores rotated by row): 4 and 4 ->
#     192 (out 128); s21: 4 and 6 -> 256; s41 (vec4<f16>): 8 and 4 -> 256; s11: 12 and 8.
# PREDICTIONS:
#   - every check 0 (the same sums; only the stores' width and order change); the SwiGLU
#     checks as before (<= 1e-7).
#   - s22 per product 10-20% below the default (the stores half hidden behind the MMAs of
#     other warps): qkv 0.55 -> 0.45-0.50 ms, out (f16 x, most conflicted) 0.45 -> 0.34-0.40,
#     SwiGLU gate/up -10 to -20%, down 1.04 -> 0.85-0.95; order s22 >= s21 > s41 > s11 > default.
#   - f16 x with s22 at least as fast as f32 x with s22 (half the bytes, no longer more
#     conflicted): the case for f16 normed activations.
#   - engine (the products ~90 ms of a ~224 ms moa-50 pass): products -9 to -18 ms; pass
#     ~224 -> 206-215 ms; moa-50 warm prefill ~146k -> 152-159k tok/s (issue 12's 25% of HF
#     = 153k within reach); dense likewise -9 to -18 ms a pass. A/A within 0.3%.
#   - start-up checks 0 / 0 / SwiGLU ~9e-8, parity as the default (0.05, 3/3); model_gpu
#     prefill tests pass, chunked vs one pass 0 for f16 without split-K.
# MEASURED (2026-12-04 00:14, benches/RESULTS.md "wgpu engine, session 30 (branch s30-gemm)"):
#   every check 0; every staging slower (s41 +19-25%, s21/s22 +25-44%, s11 2.0-2.3x), so
#   pick.py chose s41 and the engine lost (pass 219.5 -> 240.2 ms, 146.4k -> 134.1k tok/s);
#   f16 x 6-13% faster than f32 x (qkv, gate/up, down); model_gpu prefill 4 passed, chunked 0.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s30gemm1; rm -rf "$R"; mkdir -p "$R"
END=${END:-165}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s30-gemm-call1.tgz" -C "$R" .; }
left() { [ $(( $(date +%s) - s )) -lt "$END" ]; }
cap() { local c=$(( END + 12 - ($(date +%s) - s) )); [ "$c" -lt "$1" ] && echo "$c" || echo "$1"; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wp wpe model_gpu; do gunzip -c "$D/$b.gz" > /tmp/$b && chmod +x /tmp/$b; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
el start
GEMM_VARIANTS=noload,s11,s21,s22,s41 timeout "$(cap 70)" /tmp/wp --gemm 32768 10 > "$R/gemm.txt" 2>&1
el "gemm rc=$?"; save
PICK=$(python3 "$D/pick.py" "$R/gemm.txt" 2> "$R/pick.txt"); PICK=${PICK:-2,2}
el "pick $PICK"; cat "$R/pick.txt"
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 2 --profile-prefill --prefill-reps 3 --plan $P --plan dense"
one() {
  IFS=: read -r n st par c <<< "$1"
  left || { el "$n skipped (END)"; return; }
  MOA_WGPU_COOP_STAGING=$st timeout "$(cap "$c")" /tmp/wpe $A --parity "$par" > "$R/$n.txt" 2>&1
  el "$n ($st) rc=$?"; save
}
for r in "A1:1,0:0:60" "B1:$PICK:136:60" "B2:$PICK:0:30" "A2:1,0:0:30"; do one "$r"; done
left && { MOA_WGPU_COOP_STAGING=$PICK timeout "$(cap 60)" /tmp/model_gpu prefill --test-threads 12 --nocapture > "$R/model_gpu.txt" 2>&1; el "model_gpu rc=$?"; save; }
{
  cat "$R/pick.txt"
  grep -E "^check|^chosen|^[a-z0-9]+ \(x f16" "$R/gemm.txt" | grep -v "e0$" | head -20
  echo "checks: $(grep -c '^check' "$R/gemm.txt") lines, $(grep '^check' "$R/gemm.txt" | grep -c ' 0.00e0$') exactly 0"
  grep -E "^gemm" "$R/gemm.txt" | cut -c1-330
  for n in A1 B1 B2 A2; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "== $n"
    grep -o -E "== smollm2-135m [^:]*|prefill products: [^;]*|loaded in [0-9.]+ s|max .logit err. [0-9.e-]+|argmax equal [0-9/]+|warm prefill: .*" "$t" | cut -c1-300
    grep -A11 "prefill pass 1 per dispatch kind" "$t" | grep -E "qkv|out|gate_up|down|norm|rope|attention|step" | sed "s/^/  $n /"
  done
  grep -E "^test |test result|panicked|chunked vs one pass" "$R/model_gpu.txt" | cut -c1-240
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"
save
