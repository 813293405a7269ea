#!/bin/bash
# Session 21, the lead's closing call on merged main (one H200): the runs the helpers
# prepared but had no device time for, then merged main's Vulkan tests.
#   END=290 bash .dev-s21-close/closing.sh   (run tool timeout_s >= END + 15; carry
#   [".dev-s21-close", ".dev-s21-decode"], the first filled by pack-closing.sh)
# 0. registers of the decode as `wgpu_decode_bench regs` reads it now (below).
# 1. benches/wgpu-h200/s21/products.sh (s21-products: the decode products' variants beside
#    the default, one process a run; its predictions are in its header), ~90 s.
# 2. benches/decode-h200/s21/call2.sh (s21-decode: cache placement against code layout on
#    Llama-3-8B B=16 4k, `j` on Vicuna-7B B=4, the Vicuna f16 check of `j`; predictions in
#    its header), ~110 s, from s21-decode's carry folder.
# 3. tests/model_gpu.rs, the whole file, merged main. PREDICTION: 27 passed (+ any the
#    products branch added), 1 ignored.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s21close; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-290}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/close.tgz" -C "$R" .; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in model_gpu wpe wdb; do gunzip -c "$D/$b.gz" > "/tmp/$b" && chmod +x "/tmp/$b"; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
el start; save
# 0. `wgpu_decode_bench regs` now reads the engine's decode (the flat form on subgroups) by
#    default. PREDICTION: the flat form 119 registers (s21-wgpu), MOA_WGSL_SG_DECODE=0 102.
for e in "" "MOA_WGSL_SG_DECODE=0"; do
  env $e timeout 20 /tmp/wdb regs plans/smollm2-135m-moa-50.toml - 6 2>&1 | grep -m2 -E "^regs" | cut -c1-160 | tee -a "$R/regs.txt"; done
( END=${PRODUCTS_END:-90} timeout 100 bash benches/wgpu-h200/s21/products.sh ) > "$R/products.log" 2>&1
el "products rc=$?"; tail -25 "$R/products.log"; save
if [ -d .dev-s21-decode ]; then
  ( END=${DECODE_END:-110} timeout 125 bash .dev-s21-decode/call2.sh ) > "$R/decode2.log" 2>&1
  el "decode call2 rc=$?"; tail -12 "$R/decode2.log"; save; fi
T=$(( END - $(date +%s) + s - 5 ))
if [ $T -gt 20 ]; then
  ( cd "$ROOT" && timeout $T /tmp/model_gpu --test-threads 2 > "$R/model_gpu.txt" 2>&1; echo "rc=$?" >> "$R/model_gpu.txt" )
  el model_gpu; grep -E "^test result|FAILED|panicked|rc=" "$R/model_gpu.txt" | head; fi
el done; save
