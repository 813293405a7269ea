#!/bin/bash
# Session 21's first device call, prepared by session 20's lead (whose device time ran out
# after call 3). Merged main (d5accb9 or later), one call: END=190 s of command (run tool
# timeout_s 215). Carry DIR, filled by benches/lead-h200/s20/pack-next.sh: release
# cuda_check, tests/model_gpu.rs, wgpu_products_engine and wgpu_decode_bench (gzipped),
# cubins of Llama-3-8B and Vicuna-7B in bf16 with main's defaults, the Vulkan .debs.
# What session 20 left unrun on the device:
#  1. cuda_check bf16 on both upstream plans with own bands `d` the prefill default and
#     half partials `v` the GQA decode default (the engine's own cubins, not bench_prefill's).
#  2. the 8-subgroup flat decode with its model at the constant 264 (call 3 ran the same
#     count through MOA_WGPU_DECODE_RESIDENT): registers, and the step beside 396 and 4
#     subgroups, twice each.
#  3. tests/model_gpu.rs, the whole file, with that default.
# PREDICTIONS: 1. Llama-3-8B 2.063e-3, Vicuna-7B 2.075e-3 (tolerance 3e-3). 2. 102
#   registers; default 18.4-18.6 us a layer, 396 22.5-23.7, 4 subgroups 18.9-19.2; the
#   device step ~1.57 ms; parity 0.0517, 3/3. 3. 27 passed, 1 ignored.
#   bash DIR/next-checks.sh
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s21first; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-190}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "$OUT/first.tgz" -C "$R" .; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/cubins && tar xJf "$D/cubins.tar.xz" -C /tmp/cubins
for b in cuda_check model_gpu wpe wdb; do gunzip -c "$D/$b.gz" > "/tmp/$b" && chmod +x "/tmp/$b"; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
el "start, $(ls /tmp/cubins | wc -l) cubins"
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
# 1. (before the timing: nothing else on the GPU during 2)
( cd "$ROOT" && MOA_CUBIN_DIR=/tmp/cubins timeout 40 /tmp/cuda_check --upstream $L --kv-heads 8 --dtypes bf16 > "$R/check_llama.txt" 2>&1; echo "rc=$?" >> "$R/check_llama.txt" ) &
( cd "$ROOT" && MOA_CUBIN_DIR=/tmp/cubins timeout 50 /tmp/cuda_check --upstream $V --kv-heads 32 --dtypes bf16 > "$R/check_vicuna.txt" 2>&1; echo "rc=$?" >> "$R/check_vicuna.txt" ) &
wait; el checks; for f in "$R"/check_*.txt; do tail -2 "$f"; done; save
# 2.
P=plans/smollm2-135m-moa-50.toml
for e in "" "MOA_WGSL_SG_FLAT_SUBGROUPS=4"; do r=$(env $e timeout 20 /tmp/wdb regs $P - 6 2>&1 | grep -m1 -E "^regs layer [0-9]|error")
  echo "default $e $(echo "$r" | grep -o -E "Register_Count=[0-9]+")" | tee -a "$R/regs.txt"; done
export MOA_WGPU_COOP_ATTN=0
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
step() { local name=$1 par=$2 cap=$3 env=$4; left $(( cap + 75 )) || { el "skip $name"; return; }
  env $env timeout $cap /tmp/wpe $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: " "$R/$name.txt" | cut -c1-200 | head -2; }
for r in "N1:24:30:" "R1:0:16:MOA_WGPU_DECODE_RESIDENT=396" "C1:0:16:MOA_WGSL_SG_FLAT_SUBGROUPS=4" \
         "N2:0:16:" "R2:0:16:MOA_WGPU_DECODE_RESIDENT=396" "C2:0:16:MOA_WGSL_SG_FLAT_SUBGROUPS=4"; do
  IFS=: read -r n p c e <<< "$r"; step "$n" "$p" "$c" "$e"; done
printf "%-4s %6s %7s %7s %6s %6s %s\n" run tok/s ms/st dev_us attn merge parity > "$R/summary.txt"
for name in N1 R1 C1 N2 R2 C2; do t=$R/$name.txt; [ -f "$t" ] || continue
  tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
  ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
  us() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
  per() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
  par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
  arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
  printf "%-4s %6s %7s %7s %6s %6s %s\n" $name "${tok:--}" "${ms:--}" "$(us step)" "$(per attention)" "$(per merge)" "${par:+$par,$arg}"
done >> "$R/summary.txt"; cat "$R/summary.txt"; save
# 3.
unset MOA_WGPU_COOP_ATTN
if left 10; then T=$(( END - $(date +%s) + s - 5 ))
  ( cd "$ROOT" && timeout $T /tmp/model_gpu --test-threads 2 > "$R/model_gpu.txt" 2>&1; echo "rc=$?" >> "$R/model_gpu.txt" )
  el model_gpu; grep -E "^test result|FAILED|panicked|rc=" "$R/model_gpu.txt" | head; fi
el done; save
