#!/bin/bash
# Device call 3 (session 12, branch s12-wgsl): PREPARED, NOT RUN (the helper's device cap
# was spent). The new defaults' Llama column again in full (call 2's `new` list was cut
# after its slow second configuration: a cap of 10 s per list now), Llama's decode and
# merge timed alone at B=4 4k (where the short steps' time goes), and A/A lists of both
# at the end (binary: this branch's release build, defaults unchanged since ddb10c7):
#   new  = the default (f16 Q.K, f16 P.V for GQA, GQA chunk model 396),
#   main = MOA_WGSL_F16=0 MOA_WGSL_CHUNKS=auto@264 (main 7e0f3ba).
# Prediction: new / main 0.82-0.86x time on Llama (call 1 0.825, call 2 0.837 with sums).
#   bash .dev-s12-wgsl/call3-wgsl.sh      (run tool: carry [".dev-s12-wgsl"], timeout_s 80)
unset MOA_WGSL_DECODE
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-65}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/s12w3; rm -rf $R; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig; ls /usr/local/nvidia/share/vulkan/icd.d/ ) > $R/vulkan-setup.txt 2>&1
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
S=plans/smollm2-135m-moa-50.toml
H=benches/decode-h200/wgsl-gqa-hd128.toml
B=/tmp/wgpu_decode_bench_s12b
[ -x $B ] || { gzip -dc $C/wgpu_decode_bench.gz > $B && chmod +x $B; }
list() {
  local name=$1 secs=$2; shift 2
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  env "${envs[@]}" timeout $(cap $secs) $B "$@" > $R/$name.txt 2>&1
  echo "$name rc=$? $(grep -c '"wgpu-decode"' $R/$name.txt) rows"
  pack $name
}
LL="upstream $L 8 31,2,29,0 16,4 4096,16384"
list llama-main 10 MOA_WGSL_F16=0 MOA_WGSL_CHUNKS=auto@264 -- $LL
grep -m2 "^copy" $R/llama-main.txt
list llama-new 10 -- $LL
list llama-parts 12 MOA_WGSL_PARTS=step,decode,merge -- upstream $L 8 31,2,29,0 4 4096
list llama-new-aa 10 -- $LL
list llama-main-aa 10 MOA_WGSL_F16=0 MOA_WGSL_CHUNKS=auto@264 -- $LL
T=$C/wgsl_table.py
{ python3 $T main=$R/llama-main.txt new=$R/llama-new.txt new-aa=$R/llama-new-aa.txt main-aa=$R/llama-main-aa.txt; } > $R/tables.txt 2>&1
cat $R/tables.txt; grep -h "only\]" $R/llama-parts.txt
pack done
