#!/bin/bash
# Device call 17 (session 11, branch s11-wgsl): call 16's winner as the default, timed
# against the old default with a longer warm-up (>= 50 ms per configuration: call 16's
# first configurations after pipeline builds ran 3-4x slow), one binary:
#   old   = MOA_WGSL_ZERO_INIT=1 MOA_WGSL_CHECKS=1 (wgpu's zero-fill of workgroup memory
#           and naga's index clamps and loop counters, as before this branch),
#   new   = the default now (neither),
# on Llama-3-8B 0/2/29 and Vicuna-7B 0/27 (B 16/4, 4k/16k) and SmolLM2-135M's 50% plan
# (16 rows x 4096, layers 29/0/6/9 after a thrown-away layer 1) with its chunk model at
# W = 264 (the GQA default), 528 and 1056 resident workgroups (call 16's registers: 128
# per invocation there, so 4 workgroups per SM = 528, against Llama's 168 = 3 per SM),
# SmolLM2's decode and merge dispatches timed alone (in its `new` list), and the
# quad-shuffle option's check with what time is left.
#   bash .dev-s11-wgsl/run17-wgsl.sh      (run tool: carry [".dev-s11-wgsl"], timeout_s 55)
unset MOA_WGSL_DECODE
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-50}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r17; rm -rf $R; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
command -v nvidia-smi > /dev/null && ( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig ) > $R/vulkan-setup.txt 2>&1
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
S=plans/smollm2-135m-moa-50.toml
H=benches/decode-h200/wgsl-gqa-hd128.toml
B=/tmp/wgpu_decode_bench17
[ -x $B ] || { gzip -dc $C/wgpu_decode_bench.gz > $B && chmod +x $B; }
OLD="MOA_WGSL_ZERO_INIT=1 MOA_WGSL_CHECKS=1"
list() {
  local name=$1 secs=$2; shift 2
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  env "${envs[@]}" timeout $(cap $secs) $B "$@" > $R/$name.txt 2>&1
  echo "$name rc=$? $(grep -c '"wgpu-decode"' $R/$name.txt) rows $(grep -m1 'decode kernels' $R/$name.txt | sed 's/.*form //')"
  pack $name
}
LL="upstream $L 8 31,0,2,29 16,4 4096,16384"
SS="plan $S 1,29,0,6,9 16 4096"
VV="upstream $V 32 31,0,27 16,4 4096,16384"
list llama-old 10 $OLD -- $LL
grep -m2 "^copy" $R/llama-old.txt
list llama-new 8 -- $LL
list smollm2-old 5 $OLD -- $SS
list smollm2-new 4 MOA_WGSL_PARTS=step,decode,merge -- $SS
list smollm2-w528 4 MOA_WGSL_CHUNKS=auto@528 -- $SS
list smollm2-w1056 4 MOA_WGSL_CHUNKS=auto@1056 -- $SS
list vicuna-old 5 $OLD -- $VV
list vicuna-new 5 -- $VV
{ env MOA_WGSL_QUAD_SHUFFLE=1 MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 20) $B check plans/fixture-gqa.toml $H; echo "qsh margin 0 rc=$?"; } > $R/check.txt 2>&1
grep -E "rc=|FAIL" $R/check.txt; pack check
T=$C/wgsl_table.py
{ python3 $T old=$R/llama-old.txt new=$R/llama-new.txt
  python3 $T --skip 1 old=$R/smollm2-old.txt new=$R/smollm2-new.txt w528=$R/smollm2-w528.txt w1056=$R/smollm2-w1056.txt
  python3 $T old=$R/vicuna-old.txt new=$R/vicuna-new.txt; } > $R/tables.txt 2>&1
cat $R/tables.txt; grep -h "only\]" $R/smollm2-new.txt
pack done
