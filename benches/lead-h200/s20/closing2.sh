#!/bin/bash
# Session 20, the lead's last call on merged main (s20-decode and s20-wgsl merged onto the
# flat decode's f32 products): does s20-wgsl's 8-subgroup default keep its win with the
# f32 products' registers, and do the merged defaults pass on the H200?
#   END=190 bash .dev-s20-close2/closing2.sh   (run tool timeout_s >= END + 20)
# Carry (pack as closing.sh): wpe/wdb = merged main's wgpu_products_engine /
# wgpu_decode_bench, wpeW = s20-wgsl's be28a7f (8 subgroups, f16 dots), cuda_engine and
# model_gpu test binaries of merged main, the debs.
# Runs: regs of the default flat form (SmolLM2 layer 6); the engine step A (default), W
# (s20-wgsl's binary), B (default, MOA_WGPU_DECODE_RESIDENT=264: 2 workgroups an SM),
# C (MOA_WGSL_SG_FLAT_SUBGROUPS=4), twice each in turn; tests/cuda_engine.rs (GQA decode
# default 4x3eqmskv, half partials `v`); model_gpu's split-weights and decode tests.
# PREDICTIONS: regs 96 (f32 Q, as call 2's 4-subgroup form): 256 invocations x 96 = 2
#   workgroups an SM, 264 resident, so A's model at 396 runs a second wave on some layers:
#   A 19-21 us a layer, W 17.9-18.5 (s20-wgsl call 2), B 18-19, C 19.1-20.2 (call 2 of
#   this session). cuda_engine 12 passed; model_gpu subset passes.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s20close2; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-190}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "$OUT/close2.tgz" -C "$R" .; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in model_gpu cuda_engine wpe wdb wpeW; do gunzip -c "$D/$b.gz" > "/tmp/$b" && chmod +x "/tmp/$b"; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
el start
P=plans/smollm2-135m-moa-50.toml
for e in "" "MOA_WGSL_SG_FLAT_SUBGROUPS=4"; do r=$(env $e timeout 20 /tmp/wdb regs $P - 6 2>&1 | grep -m1 -E "^regs layer [0-9]|error")
  echo "default $e $(echo "$r" | grep -o -E "Register_Count=[0-9]+")" | tee -a "$R/regs.txt"; done
el regs
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
step() { local name=$1 bin=$2 par=$3 cap=$4 env=$5; left $(( cap + 75 )) || { el "skip $name"; return; }
  env $env timeout $cap /tmp/$bin $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: " "$R/$name.txt" | cut -c1-200 | head -2; }
for r in "A1:wpe:24:30:" "W1:wpeW:24:30:" "B1:wpe:0:16:MOA_WGPU_DECODE_RESIDENT=264" "C1:wpe:0:16:MOA_WGSL_SG_FLAT_SUBGROUPS=4" \
         "A2:wpe:0:16:" "W2:wpeW:0:16:" "B2:wpe:0:16:MOA_WGPU_DECODE_RESIDENT=264" "C2:wpe:0:16:MOA_WGSL_SG_FLAT_SUBGROUPS=4"; do
  IFS=: read -r n b p c e <<< "$r"; step "$n" "$b" "$p" "$c" "$e"; done
printf "%-4s %6s %7s %7s %6s %6s %s\n" run tok/s ms/st dev_us attn merge parity > "$R/summary.txt"
for name in A1 W1 B1 C1 A2 W2 B2 C2; do t=$R/$name.txt; [ -f "$t" ] || continue
  tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
  ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
  us() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
  per() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
  par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
  arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
  printf "%-4s %6s %7s %7s %6s %6s %s\n" $name "${tok:--}" "${ms:--}" "$(us step)" "$(per attention)" "$(per merge)" "${par:+$par,$arg}"
done >> "$R/summary.txt"; cat "$R/summary.txt"; save
( cd "$ROOT" && timeout 50 /tmp/cuda_engine --test-threads 1 --skip real_smollm2 > "$R/engine.txt" 2>&1; echo "rc=$?" >> "$R/engine.txt" )
el cuda_engine; grep -E "^test result|FAILED|panicked|^rc=" "$R/engine.txt"; save
if left 10; then T=$(( END - $(date +%s) + s - 5 ))
  ( cd "$ROOT" && timeout $T /tmp/model_gpu --test-threads 2 weights_over decode sparse tiny > "$R/model_gpu.txt" 2>&1; echo "rc=$?" >> "$R/model_gpu.txt" )
  el model_gpu; grep -E "^test |^test result|panicked|rc=" "$R/model_gpu.txt" | head -20; fi
el done; save
