#!/bin/bash
# Device call 15 (prepared by s10-wgsl, not run in session 10): session 10's new WGSL
# decode defaults against main's, side by side in one process each, same binary:
#   main  = MOA_WGSL_PAIRED_EPILOGUE=0 MOA_WGSL_CHUNKS=auto@1056 (main's default: per-head
#           end-of-chunk sums, the chunk model with 1056 resident workgroups),
#   new   = this branch's default (paired sums; GQA chunk model with 264),
#   b8    = new + MOA_WGSL_LOAD_BATCH=8 (K and V loads in batches of 8: fewer registers,
#           maybe more resident workgroups; early V then does not fit),
#   narrow= new + MOA_WGSL_NARROW_LOADS=1 (8-byte f16 loads: twice the value-column
#           invocations, half the accumulators and load registers each),
#   w132  = new with the chunk model at 132 (one workgroup per SM),
# then Vicuna-7B (new = main there, b8, narrow), and an A/A list of main at the end. First the
# check against the CPU reference (margin 0: the rescale path every tile).
# Carry folder .dev-s10-wgsl IN THE SESSION'S CHECKOUT (the run tool sends that, not a
# helper's worktree): wgpu_decode_bench.gz (release, built at this branch's final
# commit), wgsl-gqa-hd128.toml, wgsl_table.py, .gl/ (libvulkan1 + libglvnd/libGLX/EGL
# debs: the NVIDIA ICD needs them), this script. Run from the repository root:
#   bash .dev-s10-wgsl/run15-wgsl.sh      (run tool: carry [".dev-s10-wgsl"], timeout_s 150)
unset MOA_WGSL_DECODE
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-140}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r15; rm -rf $R; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
command -v nvidia-smi > /dev/null && ( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig ) > $R/vulkan-setup.txt 2>&1
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=/tmp/wgpu_decode_bench
[ -x $B ] || { gzip -dc $C/wgpu_decode_bench.gz > $B && chmod +x $B; }
# list NAME SECONDS PLAN KV LAYERS [ENV...]: one upstream list into $R/NAME.txt.
list() {
  local name=$1 secs=$2 plan=$3 kv=$4 layers=$5; shift 5
  env "$@" timeout $(cap $secs) $B upstream $plan $kv $layers 16,4 4096,16384 > $R/$name.txt 2>&1
  echo "$name rc=$? $(grep -c '"wgpu-decode"' $R/$name.txt) rows $(grep -m1 'decode kernels' $R/$name.txt | sed 's/.*form //')"
  pack $name
}
MAIN="MOA_WGSL_PAIRED_EPILOGUE=0 MOA_WGSL_CHUNKS=auto@1056"
{ env MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 16) $B check plans/fixture-mha.toml plans/fixture-gqa.toml $C/wgsl-gqa-hd128.toml; echo "new margin 0 rc=$?"
  env MOA_WGSL_LOAD_BATCH=8 MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 12) $B check plans/fixture-gqa.toml $C/wgsl-gqa-hd128.toml; echo "b8 margin 0 rc=$?"
  env MOA_WGSL_NARROW_LOADS=1 MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 12) $B check plans/fixture-gqa.toml $C/wgsl-gqa-hd128.toml; echo "narrow margin 0 rc=$?"
} > $R/check.txt 2>&1
grep -E "rc=|FAIL" $R/check.txt | head -20; pack check
list llama-main 16 $L 8 31,0,2,29 $MAIN
grep -m2 "^copy" $R/llama-main.txt
list llama-new 12 $L 8 31,0,2,29
list llama-b8 12 $L 8 31,0,2,29 MOA_WGSL_LOAD_BATCH=8
list llama-narrow 12 $L 8 31,0,2,29 MOA_WGSL_NARROW_LOADS=1
list llama-w132 12 $L 8 31,0,2,29 MOA_WGSL_CHUNKS=auto@132
list vicuna-new 12 $V 32 31,0,27
list vicuna-b8 12 $V 32 31,0,27 MOA_WGSL_LOAD_BATCH=8
list vicuna-narrow 12 $V 32 31,0,27 MOA_WGSL_NARROW_LOADS=1
list llama-main-aa 12 $L 8 31,0,2,29 $MAIN
T=$C/wgsl_table.py
{ python3 $T main=$R/llama-main.txt new=$R/llama-new.txt b8=$R/llama-b8.txt narrow=$R/llama-narrow.txt w132=$R/llama-w132.txt main-aa=$R/llama-main-aa.txt
  python3 $T new=$R/vicuna-new.txt b8=$R/vicuna-b8.txt narrow=$R/vicuna-narrow.txt; } > $R/tables.txt 2>&1
cat $R/tables.txt
pack done
