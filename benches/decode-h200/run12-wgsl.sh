#!/bin/bash
# Device call 12 (s9-wgsl): the scalar WGSL decode's forms (codegen::wgsl::DecodeForm,
# one binary, chosen by MOA_WGSL_DECODE_FORM) side by side through Vulkan on the H200:
#   eager = main's kernel (exact tile maxima by workgroup atomicMax, 2 barriers a tile),
#   lazy  = exact maxima on a chunk's first tile only, then 1 barrier a tile, rare atomics,
#   quad  = lazy + Q.K read by 4 invocations per slot (coalesced K, 4x fewer staged-query
#           loads, partials through workgroup memory),
#   *-early = MOA_WGSL_EARLY_V=1: the tile's V loads before its last barrier.
# First the check against the CPU reference (margin 0 runs the rescale path every tile),
# then Llama-3-8B (GQA 4) and Vicuna-7B (MHA) layers at B=16/4, prompts 4k/16k (each list
# after a throwaway layer 31, as in calls 8-11), ordered by importance so the END cap
# cuts the least useful; a chunk sweep; an eager A/A list for noise. Results packed into
# $OUT/results.tar.gz after each step; a side-by-side table printed at the end.
# Carry folder: wgpu_decode_bench, wgsl-gqa-hd128.toml, wgsl_table.py, .gl/ (Vulkan
# loader .debs), this script. Run from the repository root:
#   bash .dev-s9-wgsl/run12-wgsl.sh      (run tool: carry [".dev-s9-wgsl"], timeout_s 150)
unset MOA_WGSL_DECODE
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-115}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r12; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
command -v nvidia-smi > /dev/null && ( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig ) > $R/vulkan-setup.txt 2>&1
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=$C/wgpu_decode_bench
# list NAME SECONDS PLAN KV LAYERS [ENV...]: one upstream list into $R/NAME.txt.
list() {
  local name=$1 secs=$2 plan=$3 kv=$4 layers=$5; shift 5
  env "$@" timeout $(cap $secs) $B upstream $plan $kv $layers 16,4 4096,16384 > $R/$name.txt 2>&1
  echo "$name rc=$? $(grep -c '"wgpu-decode"' $R/$name.txt) rows $(grep -m1 'decode kernels' $R/$name.txt | sed 's/.*form //')"
  pack $name
}
F=MOA_WGSL_DECODE_FORM

{ env $F=quad MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 14) $B check plans/fixture-mha.toml plans/fixture-gqa.toml $C/wgsl-gqa-hd128.toml; echo "quad margin 0 rc=$?"
  env $F=lazy MOA_WGSL_LAZY_MARGIN=0 MOA_WGSL_EARLY_V=1 timeout $(cap 10) $B check plans/fixture-gqa.toml $C/wgsl-gqa-hd128.toml; echo "lazy early margin 0 rc=$?"
  env $F=quad MOA_WGSL_EARLY_V=1 timeout $(cap 10) $B check plans/fixture-gqa.toml $C/wgsl-gqa-hd128.toml; echo "quad early rc=$?"
} > $R/check.txt 2>&1
grep -E "F16: .*decode runs|FAIL|rc=" $R/check.txt | sed 's/, decode scalar (the default[^)]*)//' | head -14
grep -m2 -E "copy 256" $R/check.txt
pack check

list llama-eager 14 $L 8 31,0,2,29 $F=eager
grep -m2 "^copy" $R/llama-eager.txt
list llama-quad 14 $L 8 31,0,2,29 $F=quad
list llama-lazy 14 $L 8 31,0,2,29 $F=lazy
list vicuna-eager 11 $V 32 31,0,27 $F=eager
list vicuna-quad 11 $V 32 31,0,27 $F=quad
list llama-quad-early 14 $L 8 31,0,2,29 $F=quad MOA_WGSL_EARLY_V=1
list vicuna-lazy 11 $V 32 31,0,27 $F=lazy
list llama-lazy-early 14 $L 8 31,0,2,29 $F=lazy MOA_WGSL_EARLY_V=1
env MOA_WGSL_CHUNKS=auto,256,512,1024 $F=quad timeout $(cap 10) $B upstream $L 8 31,2 16,4 4096 > $R/llama-quad-chunks.txt 2>&1
echo "chunks rc=$?"; pack llama-quad-chunks
list llama-eager2 14 $L 8 31,0,2,29 $F=eager

T=$C/wgsl_table.py
{ python3 $T eager=$R/llama-eager.txt lazy=$R/llama-lazy.txt quad=$R/llama-quad.txt quad-early=$R/llama-quad-early.txt lazy-early=$R/llama-lazy-early.txt eager2=$R/llama-eager2.txt
  python3 $T eager=$R/vicuna-eager.txt lazy=$R/vicuna-lazy.txt quad=$R/vicuna-quad.txt
  python3 $T quad-chunks=$R/llama-quad-chunks.txt; } > $R/tables.txt 2>&1
cat $R/tables.txt
pack done
