#!/bin/bash
# Device call 13 (s9-wgsl): call 12 (run12-wgsl.sh) passed the check with the new forms
# but no Llama list finished: each list's process built all 32 layers' pipelines on a
# fresh driver cache, past the 14 s caps. The bench now builds only the listed layers.
# Same forms side by side (MOA_WGSL_DECODE_FORM; eager = main's kernel), ordered by
# importance so the END cap cuts the least useful; no check (done in call 12).
# Carry folder: wgpu_decode_bench, wgsl_table.py, .gl/ (Vulkan loader .debs), this
# script. Run from the repository root:
#   bash .dev-s9-wgsl/run13-wgsl.sh      (run tool: carry [".dev-s9-wgsl"], timeout_s 65)
unset MOA_WGSL_DECODE
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-56}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/r13; mkdir -p $R
pack() { echo "$1 t=$(el)" >> $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
command -v nvidia-smi > /dev/null && ( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig ) > $R/vulkan-setup.txt 2>&1
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
B=$C/wgpu_decode_bench
# list NAME SECONDS PLAN KV LAYERS [ENV...]: one upstream list into $R/NAME.txt.
list() {
  local name=$1 secs=$2 plan=$3 kv=$4 layers=$5; shift 5
  env "$@" timeout $(cap $secs) $B upstream $plan $kv $layers 16,4 4096,16384 > $R/$name.txt 2>&1
  echo "$name rc=$? $(grep -c '"wgpu-decode"' $R/$name.txt) rows t=$(el) $(grep -m1 'decode kernels' $R/$name.txt | sed 's/.*form //')"
  pack $name
}
F=MOA_WGSL_DECODE_FORM
list llama-eager 16 $L 8 31,0,2,29 $F=eager
grep -m2 "^copy" $R/llama-eager.txt
list llama-quad 16 $L 8 31,0,2,29 $F=quad
list vicuna-eager 12 $V 32 31,0,27 $F=eager
list vicuna-quad 12 $V 32 31,0,27 $F=quad
list llama-lazy 14 $L 8 31,0,2,29 $F=lazy
list llama-quad-early 14 $L 8 31,0,2,29 $F=quad MOA_WGSL_EARLY_V=1
T=$C/wgsl_table.py
{ python3 $T eager=$R/llama-eager.txt quad=$R/llama-quad.txt lazy=$R/llama-lazy.txt quad-early=$R/llama-quad-early.txt
  python3 $T eager=$R/vicuna-eager.txt quad=$R/vicuna-quad.txt; } > $R/tables.txt 2>&1
cat $R/tables.txt
pack done
