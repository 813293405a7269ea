#!/bin/bash
# Session 44, lead call 2. Call 1 (H100): sharing one module among layers of equal code made the
# SmolLM2 uniform-50 and moa-50 decode steps 8% SLOWER (1.265-1.270 against 1.168-1.174 ms;
# moa-50 1.348-1.358 against 1.243-1.271), dense unchanged (1.435-1.440 both), Vicuna-7B plan
# B = 16 11.43 against 11.23 ms. QUESTION: which kernels take the extra ~3 us a layer?
# (1) --launches beside the graph (is it the graph?); (2) nsys's per-kernel sums for uniform-50, S and P;
# (3) greedy parity of the shared path against the CPU reference (moa-50).
D=$(cd "$(dirname "$0")" && pwd); R=${OUT:-/tmp}/r; mkdir -p "$R"
s=$(date +%s); END=${END:-230}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
cap() { local c=$(( END - ($(date +%s) - s) )); [ $c -gt $1 ] && c=$1; echo $c; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/cl; cb=$(ls /usr/local/cuda/lib64/libcublas.so.* | head -1); ln -sf $cb /tmp/cl/libcublas.so
export LD_LIBRARY_PATH=/tmp/cl:$LD_LIBRARY_PATH
for b in moa cuda_check; do gunzip -c "$D/$b.gz" > /tmp/$b && chmod +x /tmp/$b; done
mkdir -p /tmp/cub && python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall('/tmp/cub')" "$D/cub.txz" \
  && export MOA_CUBIN_DIR=/tmp/cub
NS=$(which nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
el "start: $(ls /tmp/cub | wc -l) cubins; nsys=$NS"
nvidia-smi --query-gpu=name,driver_version --format=csv > "$R/gpu.txt" 2>&1
SD=$D/smollm2-dense.toml; U50=plans/smollm2-135m-uniform-50.toml; M50=plans/smollm2-135m-moa-50.toml
smol() { local tag=$1 v=$2
  MOA_CUDA_SHARED_MODULES=$v timeout $(cap 45) /tmp/moa bench --like smollm2-135m --no-dense --plan $SD --plan $U50 --plan $M50 \
    --prompt 4096 --batch 16 --new 40 --prefill-rows 4 --launches > "$R/smol-$tag.md" 2>&1
  el "smol $tag rc=$? $(grep -E '^\| ' "$R/smol-$tag.md" | grep -E 'graph|launches' | awk -F'|' '{printf "%s %s %s ms; ", $2, $6, $9}')"; }
smol S1 1; smol P1 0
if [ -n "$NS" ]; then
  for v in 1 0; do
    left 60 || break
    MOA_CUDA_SHARED_MODULES=$v timeout $(cap 60) $NS profile -o /tmp/u$v --force-overwrite true -t cuda --cuda-graph-trace=node \
      /tmp/moa bench --like smollm2-135m --no-dense --plan $U50 --prompt 4096 --batch 16 --new 40 --prefill-rows 4 > "$R/nsys-run-$v.txt" 2>&1
    el "nsys $v rc=$?"
    timeout $(cap 40) $NS stats -r cuda_gpu_kern_sum -f csv -o "$R/kern-$v" /tmp/u$v.nsys-rep > "$R/nsys-stats-$v.txt" 2>&1
    el "stats $v rc=$?"; head -c 3000 "$R"/kern-${v}*.csv | cut -c1-220 | head -16
  done
fi
left 60 && { MOA_CUDA_SHARED_MODULES=1 timeout $(cap 60) /tmp/moa bench --parity 32 --plan $M50 --checks-only > "$R/parity-S.txt" 2>&1
  el "parity S rc=$?"; tail -8 "$R/parity-S.txt"; }
el done
