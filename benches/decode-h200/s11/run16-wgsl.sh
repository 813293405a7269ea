#!/bin/bash
# Device call 16 (session 11, branch s11-wgsl): what the NVIDIA driver makes of the WGSL
# decode, and five options of it side by side, one binary (wgpu_decode_bench's knobs):
#   base  = main's default (quad, paired sums, early V for GQA, GQA chunk model at 264),
#   nzc   = MOA_WGSL_ZERO_INIT=0 MOA_WGSL_CHECKS=0: pipelines without wgpu's zero-fill of
#           workgroup memory (~15 KB per work item) and without naga's index clamps and
#           loop counters (create_shader_module_trusted),
#   qk8   = MOA_WGSL_QK_BATCH=8: the quad form's K loads in two batches of 8 (V loads and
#           early V unchanged): 32 registers less at the Q.K peak,
#   t256  = MOA_WGSL_THREADS=256: 256 invocations over a 256-slot tile (same work per
#           invocation, half the barriers per byte; 28 KB of workgroup memory),
#   t64   = MOA_WGSL_THREADS=64: 64 invocations over a 64-slot tile (finer register
#           allocation per SM, barriers among 2 warps, twice the barriers per byte),
#   qsh   = MOA_WGSL_QUAD_SHUFFLE=1: a slot's four partial scores summed by
#           subgroupShuffleXor in its quad (no workgroup round trip, one barrier less
#           per tile),
#   combo = nzc + qsh.
# (1) `regs`: registers, shared memory and more per compiled kernel, read through
# VK_KHR_pipeline_executable_properties (wgpu shows none); (2) the check against the CPU
# reference (margin 0: the rescale path every tile) of every option; (3) Llama-3-8B
# layers 0/2/29, B 16/4, 4k/16k against the copy kernel, each option; SmolLM2-135M's 50%
# plan (the wgpu engine's shape: head_dim 64, GQA 9/3) at 16 rows x 4096, layers 29, 0,
# 6, 9 (smallest, below median, median, largest KV share; layer 1 first, thrown away);
# Vicuna-7B layers 0/27; base again at the end (A/A).
# Carry folder .dev-s11-wgsl IN THE SESSION'S CHECKOUT: wgpu_decode_bench.gz (release,
# this branch), wgsl_table.py, .gl/ (libvulkan1 + libglvnd/libGLX/EGL debs), this script.
#   bash .dev-s11-wgsl/run16-wgsl.sh      (run tool: carry [".dev-s11-wgsl"], timeout_s 210)
unset MOA_WGSL_DECODE
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-185}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r16; rm -rf $R; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
command -v nvidia-smi > /dev/null && ( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig ) > $R/vulkan-setup.txt 2>&1
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
S=plans/smollm2-135m-moa-50.toml
H=benches/decode-h200/wgsl-gqa-hd128.toml
B=/tmp/wgpu_decode_bench
[ -x $B ] || { gzip -dc $C/wgpu_decode_bench.gz > $B && chmod +x $B; }
NZC="MOA_WGSL_ZERO_INIT=0 MOA_WGSL_CHECKS=0"
QK8="MOA_WGSL_QK_BATCH=8"
T256="MOA_WGSL_THREADS=256"
T64="MOA_WGSL_THREADS=64"
QSH="MOA_WGSL_QUAD_SHUFFLE=1"
COMBO="$NZC $QSH"
# (1) registers: Llama layer 2 (every Llama layer has the same shape) and the merge.
{ for v in "base:" "zi0:MOA_WGSL_ZERO_INIT=0" "chk0:MOA_WGSL_CHECKS=0" "qk8:$QK8" "t256:$T256" "t64:$T64" "qsh:$QSH" \
           "b8:MOA_WGSL_LOAD_BATCH=8" "narrow:MOA_WGSL_NARROW_LOADS=1" "early0:MOA_WGSL_EARLY_V=0" "eager:MOA_WGSL_DECODE_FORM=eager"; do
    echo "== llama ${v%%:*}"; env ${v#*:} timeout $(cap 6) $B regs $L 8 2 2>&1 | tail -3
  done
  for v in "base:" "qk8:$QK8" "t64:$T64"; do
    echo "== smollm2 ${v%%:*}"; env ${v#*:} timeout $(cap 6) $B regs $S - 6 2>&1 | tail -2
  done
  for v in "base:"; do
    echo "== vicuna ${v%%:*}"; env ${v#*:} timeout $(cap 6) $B regs $V 32 0 2>&1 | tail -2
  done
} > $R/regs.txt 2>&1
grep -E "^==|Register|rror" $R/regs.txt | head -60; pack regs
# (2) the check, margin 0, every option.
{ for v in "base:" "nzc:$NZC" "qk8:$QK8" "t256:$T256" "t64:$T64" "qsh:$QSH" "combo:$COMBO"; do
    env ${v#*:} MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 10) $B check plans/fixture-mha.toml plans/fixture-gqa.toml $H; echo "${v%%:*} margin 0 rc=$?"
  done
} > $R/check.txt 2>&1
grep -E "rc=|FAIL" $R/check.txt | head -20; pack check
# list NAME SECONDS [ENV...] -- ARGS: one list into $R/NAME.txt.
list() {
  local name=$1 secs=$2; shift 2
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  env "${envs[@]}" timeout $(cap $secs) $B "$@" > $R/$name.txt 2>&1
  echo "$name rc=$? $(grep -c '"wgpu-decode"' $R/$name.txt) rows $(grep -m1 'decode kernels' $R/$name.txt | sed 's/.*form //')"
  pack $name
}
LL="upstream $L 8 31,0,2,29 16,4 4096,16384"
list llama-base 14 -- $LL
grep -m2 "^copy" $R/llama-base.txt
list llama-nzc 10 $NZC -- $LL
list llama-qk8 10 $QK8 -- $LL
list llama-t256 10 $T256 -- $LL
list llama-t64 10 $T64 -- $LL
list llama-qsh 10 $QSH -- $LL
list llama-combo 10 $COMBO -- $LL
SS="plan $S 1,29,0,6,9 16 4096"
for v in "base:" "nzc:$NZC" "qk8:$QK8" "t256:$T256" "t64:$T64" "qsh:$QSH" "combo:$COMBO"; do list smollm2-${v%%:*} 8 ${v#*:} -- $SS; done
VV="upstream $V 32 31,0,27 16,4 4096,16384"
for v in "base:" "nzc:$NZC" "qsh:$QSH"; do list vicuna-${v%%:*} 8 ${v#*:} -- $VV; done
list llama-base-aa 10 -- $LL
T=$C/wgsl_table.py
{ python3 $T base=$R/llama-base.txt nzc=$R/llama-nzc.txt qk8=$R/llama-qk8.txt t256=$R/llama-t256.txt t64=$R/llama-t64.txt qsh=$R/llama-qsh.txt combo=$R/llama-combo.txt base-aa=$R/llama-base-aa.txt
  python3 $T --skip 1 base=$R/smollm2-base.txt nzc=$R/smollm2-nzc.txt qk8=$R/smollm2-qk8.txt t256=$R/smollm2-t256.txt t64=$R/smollm2-t64.txt qsh=$R/smollm2-qsh.txt combo=$R/smollm2-combo.txt
  python3 $T base=$R/vicuna-base.txt nzc=$R/vicuna-nzc.txt qsh=$R/vicuna-qsh.txt; } > $R/tables.txt 2>&1
cat $R/tables.txt
pack done
