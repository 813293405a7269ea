#!/bin/bash
# Session 30, s30-gemm, call 2 — PREPARED FOR THE LEAD, NOT RUN by s30-gemm (its device
# budget went to call 1): MOA_WGPU_NORM_F16 (the prefill RMSNorms write f16 normed
# activations; the QKV and gate/up products read them as the out product reads the
# attention output: coop_linear.wgsl's f16-x build and an f16-x SwiGLU gate/up product
# whose act is written in f16 too (SWIGLU 2), read by the down product as f16 x) against
# the default, A B B A, then model_gpu's prefill tests with it.
#   bash .dev-s30-gemm/call2.sh   (run tool timeout_s 120; carry [".dev-s30-gemm"], filled
#   by `pack.sh DEST BIN 2`: wpe = release wgpu_products_engine and model_gpu = release test
#   binary of s30-gemm's MOA_WGPU_NORM_F16 commit, checked with
#   `strings B | grep -c MOA_WGPU_NORM_F16`; the Vulkan loader .debs)
# 1. wpe --like smollm2-135m --rows 16 --prompt 4096 --new 2 --profile-prefill
#    --prefill-reps 3 --plan moa-50 --plan dense: A1 (default, parity 136) B1
#    (MOA_WGPU_NORM_F16=1, parity 136) B2 A2, one process a run.
# 2. MOA_WGPU_NORM_F16=1 model_gpu prefill (uses of WgpuEngine::new read it).
# MODEL: call 1 (benches/RESULTS.md, "wgpu engine, session 30 (branch s30-gemm)") timed the
#   products alone with f16 x against f32 x, A B B A: qkv -6.7%, gate/up (plain) -8.6%,
#   down -13.4%. The norm pass reads 4 and writes 2 bytes an element instead of 4 and 4;
#   the SwiGLU product writes 2 bytes an act element instead of 4.
# PREDICTIONS (moa-50, a pass of 8 x 4096; call 1's A: 219.5 ms, qkv 13.8, gate_up 39.8,
#   down 21.6, norm 3.1): qkv 13.8 -> 12.7-13.2, gate_up 39.8 -> 35.5-38 (if the SwiGLU
#   product gains as the plain one, and half its writes), down 21.6 -> 18.5-19.5, norm 3.1
#   -> 2.3-2.8; the pass -5 to -9 ms -> 210.5-214.5 ms; warm prefill 146.4k -> 150-153k
#   tok/s (dense alike in ms). Start-up notes add "(f16 act (max rel err <= 5e-4))";
#   parity as A's or within the act's f16 rounding (the matrix units round x to f16 at
#   their staging either way; A: 0.0474 / 0.0445, 3/3); model_gpu prefill 4 passed,
#   chunked vs one pass 0 for f16 without split-K. A/A within 0.3%.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s30gemm2; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s30-gemm-call2.tgz" -C "$R" .; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wpe model_gpu; do gunzip -c "$D/$b.gz" > /tmp/$b && chmod +x /tmp/$b; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
el start
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 2 --profile-prefill --prefill-reps 3 --plan $P --plan dense"
for r in A1:0:136:45 B1:1:136:35 B2:1:0:20 A2:0:0:20; do IFS=: read -r n f par c <<< "$r"
  MOA_WGPU_NORM_F16=$f timeout "$c" /tmp/wpe $A --parity "$par" > "$R/$n.txt" 2>&1; el "$n (norm f16 $f) rc=$?"; save
done
MOA_WGPU_NORM_F16=1 timeout 30 /tmp/model_gpu prefill --test-threads 12 --nocapture > "$R/model_gpu.txt" 2>&1; el "model_gpu rc=$?"
{
  for n in A1 B1 B2 A2; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "== $n"
    grep -o -E "== smollm2-135m [^:]*|prefill products: [^;]*|loaded in [0-9.]+ s|max .logit err. [0-9.e-]+|argmax equal [0-9/]+|warm prefill: .*" "$t" | cut -c1-300
    grep -A11 "prefill pass 1 per dispatch kind" "$t" | grep -E "qkv|out|gate_up|down|norm|rope|attention|step" | sed "s/^/  $n /"
  done
  grep -E "^test |test result|panicked|chunked vs one pass" "$R/model_gpu.txt" | cut -c1-240
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"
save
