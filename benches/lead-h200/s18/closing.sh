#!/bin/bash
# Lead's check of session 18's merged main on the H200 in one call (END=300 s of command;
# run tool timeout_s 340). Carry .dev-s18-lead (benches/lead-h200/s18/pack-closing.sh):
# merged main's release cuda_check, cuda_cubins-built cubins (Llama-3-8B bf16/f16 and
# fixture-gqa with main's defaults), tests/cuda_engine.rs and tests/model_gpu.rs binaries,
# the Vulkan .debs, and benches/peers/rope_llama3.py; s18-prefill's carry for the ncu step.
# PREDICTIONS (before the call):
#  1. tests/cuda_engine.rs 12/12 (real_smollm2 skipped): the RoPE table now comes from
#     LlamaConfig::rope_inv_freq (identical values for unscaled models), decode default k.
#  2. cuda_check Llama-3-8B with the GQA default 4x3eqmsk: bf16 2.063e-3, f16 3.989e-4
#     (s18-decode's call with k named); racecheck + memcheck on fixture-gqa bf16: 0 / 0.
#  3. rope_llama3.py: transformers' llama3 inv_freq within 2e-6 of moa's asserted values.
#  4. tests/model_gpu.rs on the H200's Vulkan: llama3_rope_scaling_matches_the_cpu_reference
#     and the rest pass (the wgpu default unchanged this session).
#  5. (if time) s18-prefill's ncu step: Vicuna-7B l15/l27 4k x 4 source counters (the F of
#     4 us a block).
D=$(cd "$(dirname "$0")" && pwd)
ROOT=$PWD
R=$OUT/lead; mkdir -p "$R"
s=$(date +%s); END=${END:-300}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "$OUT/lead.tgz" -C "$R" .; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include PYTHONUNBUFFERED=1
cd "$D" || exit 1
mkdir -p cubins && tar xJf cubins.tar.xz -C cubins
for b in cuda_check cuda_engine model_gpu; do gunzip -f $b.gz; chmod +x $b; done
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$R/env.txt" 2>&1
el "start, $(ls cubins | wc -l) cubins"
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
# --- 1 + 2 + 3 side by side
( cd "$ROOT" && timeout 110 "$D/cuda_engine" --test-threads 1 --skip real_smollm2 > "$R/engine.txt" 2>&1; echo "rc=$?" >> "$R/engine.txt" ) &
( cd "$ROOT" && for dt in bf16 f16; do MOA_CUBIN_DIR=$D/cubins timeout 60 "$D/cuda_check" --upstream $L --kv-heads 8 --dtypes $dt > "$R/check_llama_$dt.txt" 2>&1; echo "rc=$?" >> "$R/check_llama_$dt.txt"; done ) &
( timeout 60 python3 "$ROOT/benches/peers/rope_llama3.py" > "$R/rope.txt" 2>&1; echo "rc=$?" >> "$R/rope.txt" ) &
wait
el "engine, checks, rope"; grep -E "^test result|FAILED|panicked|^rc=" "$R/engine.txt"; tail -3 "$R"/check_llama_*.txt; cat "$R/rope.txt"; save
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
for tool in racecheck memcheck; do
  left 40 || break
  ( cd "$ROOT" && MOA_CUBIN_DIR=$D/cubins timeout 70 "$SAN" --tool $tool "$D/cuda_check" plans/fixture-gqa.toml --dtypes bf16 > "$R/san_$tool.txt" 2>&1; echo "rc=$?" >> "$R/san_$tool.txt" )
  el "$tool"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|hazard|rc=" "$R/san_$tool.txt" | tail -3
done
save
# --- 4. model_gpu on Vulkan
if left 60; then
  ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
  ( cd "$ROOT" && timeout 40 "$D/model_gpu" --test-threads 1 llama3_rope > "$R/model_gpu_rope.txt" 2>&1; echo "rc=$?" >> "$R/model_gpu_rope.txt" )
  el "model_gpu rope"; grep -E "^test |rc=" "$R/model_gpu_rope.txt"
  T=$(( END - $(date +%s) + s - 75 )); [ $T -gt 10 ] && ( cd "$ROOT" && timeout $T "$D/model_gpu" --test-threads 2 --skip llama3_rope > "$R/model_gpu.txt" 2>&1; echo "rc=$?" >> "$R/model_gpu.txt" )
  el "model_gpu rest"; grep -E "^test result|FAILED|panicked|rc=" "$R/model_gpu.txt"; grep -c "\.\.\. ok" "$R/model_gpu.txt"
fi
save
# --- 5. s18-prefill's ncu step (Vicuna-7B l15/l27 at 4k x 4)
P=$ROOT/.dev-s18-prefill
if left 45 && [ -d "$P" ]; then
  cd "$P" && mkdir -p cubins && tar xJf cubins.tar.xz -C cubins && gunzip -f bench_prefill.gz; chmod +x bench_prefill
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
  M=dram__bytes_read.sum,lts__t_sector_hit_rate.pct,sm__cycles_active.avg,sm__cycles_active.max,gpc__cycles_elapsed.max,sm__ctas_launched.sum
  MOA_CUBIN_DIR=$P/cubins timeout 40 "$NCU" --clock-control none --section SpeedOfLight --section LaunchStats --section WarpStateStats --section SourceCounters --metrics $M -f \
    -k regex:'moa_prefill_bf16_hd128_l(15|27)$' --launch-count 2 -o "$R/ncu1" \
    ./bench_prefill plans/vicuna7b.json:32 --variants 3x64x1owghvuncafm --layers-only 15,27 --prompts 4096 --rows 4 --reps 1 --warmups 0 --out "$R/ncu_bench1.jsonl" > "$R/ncu1.log" 2>&1
  el "ncu rc=$?"
  if [ -s "$R/ncu1.ncu-rep" ]; then
    "$NCU" --import "$R/ncu1.ncu-rep" --page details --csv > "$R/ncu_details1.csv" 2>/dev/null
    "$NCU" --import "$R/ncu1.ncu-rep" --page source --csv --print-source sass > "$R/ncu_source1.csv" 2>/dev/null
    gzip -f "$R"/ncu_*1.csv; rm -f "$R/ncu1.ncu-rep"
  fi
fi
el done; save
