#!/bin/bash
# Device call 2 (session 12, branch s12-wgsl): call 1's winners as the defaults, timed
# against main's default, one binary:
#   new  = the default now: f16 Q.K (quad form, f16 storage), f16 P.V for GQA groups,
#          GQA chunk model at 396 resident workgroups for head_dim > 64 (3 per SM),
#   main = MOA_WGSL_F16=0 MOA_WGSL_CHUNKS=auto@264 (main 7e0f3ba's kernel and chunk model;
#          for SmolLM2 auto@528 and Vicuna auto@1056, main's values for those shapes),
#   w660 = SmolLM2 with the chunk model at 660 (f16 products take 99-104 registers: 5
#          workgroups per SM, not 4),
#   w528 = Vicuna-7B (MHA) with the chunk model at 528 (f16 Q.K: 119 registers, 4 per
#          SM, where 1056 assumes 8),
#   sums = new + MOA_WGSL_QK_SUMS=1: the sums l += p by the Q.K invocation of each slot
#          (once per slot and head) instead of by all 16 (Llama; SmolLM2: 8) value-column
#          invocations of its slot group; one more barrier per chunk (paired-sum layers:
#          Llama, SmolLM2; not Vicuna).
# Predictions (before the call): Llama new/main 0.80-0.85x time (call 1: both-w396 0.742
# with the warm-up row, ~0.83 without); Vicuna 0.95-0.98x; SmolLM2 0.97-1.03x (latency-
# bound); w660 and w528 0.95-1.05x of new; sums 0.95-0.98x of new on Llama at 16k
# (64 of ~1100 instructions per invocation per tile), ~1.0 on SmolLM2 and Llama B=4 4k.
# Upstream lists now take layers 31,2,29,0: call 1's second configuration (layer 0, B=16,
# 4k) ran 3-4x slow in most processes; is it the position or the layer?
#   bash .dev-s12-wgsl/call2-wgsl.sh      (run tool: carry [".dev-s12-wgsl"], timeout_s 125)
unset MOA_WGSL_DECODE
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-105}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/s12w2; rm -rf $R; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig; ls /usr/local/nvidia/share/vulkan/icd.d/ ) > $R/vulkan-setup.txt 2>&1
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
S=plans/smollm2-135m-moa-50.toml
H=benches/decode-h200/wgsl-gqa-hd128.toml
B=/tmp/wgpu_decode_bench_s12b
[ -x $B ] || { gzip -dc $C/wgpu_decode_bench.gz > $B && chmod +x $B; }
# Registers of the new default and of `sums` (Llama layer 2, SmolLM2 layer 6).
{ for v in "new:MOA_WGSL_QK_SUMS=0" "sums:MOA_WGSL_QK_SUMS=1"; do
    echo "== llama ${v%%:*}"; env ${v#*:} timeout $(cap 4) $B regs $L 8 2 2>&1 | tail -2
    echo "== smollm2 ${v%%:*}"; env ${v#*:} timeout $(cap 4) $B regs $S - 6 2>&1 | tail -2
  done
} > $R/regs.txt 2>&1
grep -E "^==|regs layer [0-9]" $R/regs.txt; pack regs
list() {
  local name=$1 secs=$2; shift 2
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  env "${envs[@]}" timeout $(cap $secs) $B "$@" > $R/$name.txt 2>&1
  echo "$name rc=$? $(grep -c '"wgpu-decode"' $R/$name.txt) rows"
  pack $name
}
LL="upstream $L 8 31,2,29,0 16,4 4096,16384"
SS="plan $S 1,29,0,6,9 16 4096"
VV="upstream $V 32 31,0,27 16,4 4096,16384"
list llama-main 9 MOA_WGSL_F16=0 MOA_WGSL_CHUNKS=auto@264 -- $LL
grep -m2 "^copy" $R/llama-main.txt
list llama-new 8 -- $LL
list llama-sums 8 MOA_WGSL_QK_SUMS=1 -- $LL
list smollm2-main 4 MOA_WGSL_F16=0 -- $SS
list smollm2-new 5 MOA_WGSL_PARTS=step,decode,merge -- $SS
list smollm2-w660 4 MOA_WGSL_CHUNKS=auto@660 -- $SS
list smollm2-sums 4 MOA_WGSL_QK_SUMS=1 -- $SS
list vicuna-main 5 MOA_WGSL_F16=0 -- $VV
list vicuna-new 5 -- $VV
# The check of the new defaults against the CPU reference (call 1's was cut before the
# hd128 f16 shape): margin 0 (the rescale path every tile), then the default margin.
{ env MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 20) $B check $H plans/fixture-gqa.toml; echo "new margin 0 rc=$?"
  env MOA_WGSL_QK_SUMS=1 MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 16) $B check $H plans/fixture-gqa.toml; echo "sums margin 0 rc=$?"
} > $R/check.txt 2>&1
grep -E "rc=|FAIL|F16" $R/check.txt | head -20; pack check
list vicuna-w528 5 MOA_WGSL_CHUNKS=auto@528 -- $VV
list llama-main-aa 8 MOA_WGSL_F16=0 MOA_WGSL_CHUNKS=auto@264 -- $LL
T=$C/wgsl_table.py
{ python3 $T main=$R/llama-main.txt new=$R/llama-new.txt sums=$R/llama-sums.txt main-aa=$R/llama-main-aa.txt
  python3 $T new=$R/llama-new.txt sums=$R/llama-sums.txt
  python3 $T --skip 1 main=$R/smollm2-main.txt new=$R/smollm2-new.txt w660=$R/smollm2-w660.txt sums=$R/smollm2-sums.txt
  python3 $T main=$R/vicuna-main.txt new=$R/vicuna-new.txt w528=$R/vicuna-w528.txt; } > $R/tables.txt 2>&1
cat $R/tables.txt; grep -h "only\]" $R/smollm2-new.txt
pack done
