#!/bin/bash
# Session 30's lead call (run in session 31's time): the merged main (a3dcaab + s30-pattn,
# s30-gemm, s30-attn, s30-i8, s30-user) on the H200 through Vulkan.
#   bash .dev-lead/call.sh   (run tool timeout_s 240; carry [".dev-lead"], filled by
#   pack.sh: wpe = release wgpu_products_engine, model_gpu = release test binary, both of
#   the merged main, checked to name MOA_WGPU_NORM_F16 and the pipeline-build panic text;
#   the Vulkan loader .debs)
# 1. wpe --like smollm2-135m --rows 16 --prompt 4096 --new 2 --profile-prefill
#    --prefill-reps 3 --plan moa-50 --plan dense: A1 (default: K staged, V early; parity
#    136) B1 (MOA_WGPU_NORM_F16=1, parity 136) B2 A2, one process a run (s30-gemm's call 2,
#    never run, now over s30-pattn's default).
# 2. MOA_WGPU_NORM_F16=1 model_gpu prefill; then model_gpu whole with the defaults (the
#    matrix-unit prefill with staged K had not run model_gpu on the device).
# PREDICTIONS: A: a moa-50 pass ~197 ms, warm prefill ~160k tok/s (s30-pattn: 162.4k);
#   B: qkv/gate_up/down -7..-13% each (s30-gemm call 1), the pass -5..-9 ms, +3..+5% tok/s;
#   parity as A's (<= 0.06, 3/3); model_gpu passes.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s30lead; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s30-lead.tgz" -C "$R" .; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wpe model_gpu; do gunzip -c "$D/$b.gz" > /tmp/$b && chmod +x /tmp/$b; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
el start
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 2 --profile-prefill --prefill-reps 3 --plan $P --plan dense"
for r in A1:0:136:50 B1:1:136:40 B2:1:0:25 A2:0:0:25; do IFS=: read -r n f par c <<< "$r"
  MOA_WGPU_NORM_F16=$f timeout "$c" /tmp/wpe $A --parity "$par" > "$R/$n.txt" 2>&1; el "$n (norm f16 $f) rc=$?"; save
done
MOA_WGPU_NORM_F16=1 timeout 30 /tmp/model_gpu prefill --test-threads 12 --nocapture > "$R/model_gpu_f16.txt" 2>&1; el "model_gpu prefill f16 rc=$?"; save
timeout 70 /tmp/model_gpu --test-threads 12 > "$R/model_gpu.txt" 2>&1; el "model_gpu rc=$?"
{
  for n in A1 B1 B2 A2; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "== $n"
    grep -o -E "== smollm2-135m [^:]*|prefill products: [^;]*|loaded in [0-9.]+ s|max .logit err. [0-9.e-]+|argmax equal [0-9/]+|warm prefill: .*" "$t" | cut -c1-300
    grep -A11 "prefill pass 1 per dispatch kind" "$t" | grep -E "qkv|out|gate_up|down|norm|rope|attention|step" | sed "s/^/  $n /"
  done
  for f in model_gpu_f16 model_gpu; do echo "== $f"; grep -E "^test .*(FAILED|ignored)|test result|panicked|chunked vs one pass" "$R/$f.txt" | cut -c1-240; done
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"
save
