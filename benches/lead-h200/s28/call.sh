#!/bin/bash
# Session 28, the lead's call on merged main 577e1ae (one H200 through Vulkan): the two
# prefill changes of the session together (s28-pattn: the GQA-group attention the default;
# s28-gemm: the products' direct write-out, DIRECT 2, the default), s28-pattn's prepared
# call 2 (the whole tests/model_gpu.rs with both defaults) and s28-gemm's product bench as
# the engine runs the products.
#   bash .dev-lead/call.sh   (run tool timeout_s 330; carry [".dev-lead"]: wpe, wp, model_gpu
#   of 577e1ae gzipped, hf_prefill.py, gl debs)
# NOTE: hf_prefill.py imports hf_decode.py, which this call did not carry: the HF run failed
#   (ModuleNotFoundError); s28-pattn's call 1 measured HF's warm batched SDPA at 610.7k tok/s.
# PREDICTIONS: s28-pattn's call 1 (group attention, s27 products): moa-50 pass 304 ms,
#   105.7k tok/s; dense 388 ms, 83.6k. s28-gemm's direct write-out took 17-18 ms a pass
#   off the products, so merged: moa-50 ~286 ms a pass, ~110-113k tok/s (18% of HF's
#   ~611k); dense ~370 ms, ~87k. model_gpu: 29 passed, 1 ignored.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/lead28; rm -rf "$R"; mkdir -p "$R"
END=${END:-290}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/lead28.tgz" -C "$R" .; }
left() { [ $(( $(date +%s) - s )) -lt "$END" ]; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wpe wp model_gpu; do gunzip -c "$D/$b.gz" > /tmp/$b && chmod +x /tmp/$b; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
el start
timeout 50 python3 "$D/hf_prefill.py" --like smollm2-135m --batch 16 --prompt 4096 \
  --attn sdpa --warm 2 --reps 5 --json "$R/hf.jsonl" > "$R/hf.txt" 2>&1
el "hf rc=$?"; save
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 8 --profile-prefill --prefill-reps 3"
left && { timeout 70 /tmp/wpe $A --plan $P --plan dense --parity 24 > "$R/M1.txt" 2>&1; el "M1 rc=$?"; save; }
left && { timeout 45 /tmp/wpe $A --plan $P --plan dense --parity 0 > "$R/M2.txt" 2>&1; el "M2 rc=$?"; save; }
left && { timeout 60 /tmp/model_gpu --test-threads 12 --nocapture > "$R/model_gpu.txt" 2>&1; el "model_gpu rc=$?"; save; }
left && { timeout 45 /tmp/wp --gemm 32768 10 > "$R/gemm.txt" 2>&1; el "gemm rc=$?"; save; }
{
  grep -E "^hf prefill|out of memory|Error" "$R/hf.txt"
  for n in M1 M2; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "== $n"
    grep -o -E "== smollm2-135m [^:]*|prefill attention: [^;]*|prefill products: [^;]*|loaded in [0-9.]+ s|max .logit err. [0-9.e-]+|argmax equal [0-9/]+|prefill: [^;]*|warm prefill: .*|  attention: .*|       step: .*" "$t" | cut -c1-200
    grep -A15 "prefill pass 1 per dispatch kind" "$t" | sed "s/^/  $n /"
  done
  grep -E "^test .*FAILED|test result|panicked" "$R/model_gpu.txt" | cut -c1-240
  grep -E "^check|^gemm|^chosen|^[a-z]+ \(x f16" "$R/gemm.txt"
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"
save
