#!/bin/bash
# Device call 14 (s10-wgsl; binary at be60a07, whose K-prefetch knob was removed after
# this call): the quad form's new options side by side through Vulkan on
# the H200, one binary (codegen::wgsl::WgslTuning through the bench's environment):
#   base   = main's default (quad; early V loads for GQA, none for MHA),
#   pair   = + MOA_WGSL_PAIRED_EPILOGUE=1 (end-of-chunk sums two heads at a time through
#            the Q.K partials' buffer: 3 barriers instead of 9 at a group of 4),
#   first  = pair + MOA_WGSL_K_PREFETCH=first (the chunk's first K tile loaded before the
#            queries are staged: one memory round trip less per work item),
#   ahead  = pair + MOA_WGSL_K_PREFETCH=ahead (also each next tile's K before this
#            tile's P.V: more registers held),
# then the chunk model with fewer resident workgroups (auto@528, auto@264: longer
# chunks at B=4), early V and K prefetch on Vicuna (MHA), the compiled pipelines'
# registers where the driver's cache shows them, and an A/A list of base at the end.
# First the check against the CPU reference (margin 0 runs the rescale path every tile).
# Carry folder .dev-s10-wgsl: wgpu_decode_bench.gz (release, this commit), wgsl-gqa-hd128.toml, wgsl_table.py,
# sass_usage.py, .gl/ (Vulkan loader .deb), this script. Run from the repository root:
#   bash .dev-s10-wgsl/run14-wgsl.sh      (run tool: carry [".dev-s10-wgsl"], timeout_s 170)
unset MOA_WGSL_DECODE
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-160}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r14; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R --exclude=glcache --exclude=cubins .; }
command -v nvidia-smi > /dev/null && ( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig ) > $R/vulkan-setup.txt 2>&1
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json; ls /usr/local/nvidia/share/vulkan/icd.d/ >> $R/vulkan-setup.txt 2>&1
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_PATH=$R/glcache __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1
mkdir -p $R/glcache
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
K=MOA_WGSL_K_PREFETCH P=MOA_WGSL_PAIRED_EPILOGUE
{ env $K=ahead $P=1 MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 16) $B check plans/fixture-mha.toml plans/fixture-gqa.toml $C/wgsl-gqa-hd128.toml; echo "ahead paired margin 0 rc=$?"
  env $K=first $P=1 MOA_WGSL_EARLY_V=0 MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 10) $B check plans/fixture-gqa.toml $C/wgsl-gqa-hd128.toml; echo "first paired no-early margin 0 rc=$?"
} > $R/check.txt 2>&1
grep -E "rc=|FAIL|max" $R/check.txt | head -20; pack check
list llama-base 16 $L 8 31,0,2,29
grep -m2 "^copy" $R/llama-base.txt
list llama-pair 12 $L 8 31,0,2,29 $P=1
list llama-first 12 $L 8 31,0,2,29 $P=1 $K=first
list llama-ahead 12 $L 8 31,0,2,29 $P=1 $K=ahead
list llama-first-w528 12 $L 8 31,0,2,29 $P=1 $K=first MOA_WGSL_CHUNKS=auto@528
list llama-first-w264 12 $L 8 31,0,2,29 $P=1 $K=first MOA_WGSL_CHUNKS=auto@264
list vicuna-base 12 $V 32 31,0,27
list vicuna-early 12 $V 32 31,0,27 MOA_WGSL_EARLY_V=1
list vicuna-first 12 $V 32 31,0,27 $K=first
list vicuna-ahead 12 $V 32 31,0,27 MOA_WGSL_EARLY_V=1 $K=ahead
{ du -sh $R/glcache; timeout $(cap 10) python3 $C/sass_usage.py $R/glcache $R/cubins; } > $R/registers.txt 2>&1
head -40 $R/registers.txt; pack registers
list llama-base-aa 12 $L 8 31,0,2,29
T=$C/wgsl_table.py
{ python3 $T base=$R/llama-base.txt pair=$R/llama-pair.txt first=$R/llama-first.txt ahead=$R/llama-ahead.txt base-aa=$R/llama-base-aa.txt
  python3 $T first=$R/llama-first.txt w528=$R/llama-first-w528.txt w264=$R/llama-first-w264.txt
  python3 $T base=$R/vicuna-base.txt early=$R/vicuna-early.txt first=$R/vicuna-first.txt ahead=$R/vicuna-ahead.txt; } > $R/tables.txt 2>&1
cat $R/tables.txt
pack done
