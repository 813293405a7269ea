#!/bin/bash
# Device call 1 (session 12, branch s12-wgsl): the WGSL decode's products in f16
# arithmetic (quad form, f16 storage; `WgslTuning::decode_f16_qk` / `decode_f16_pv`,
# knob MOA_WGSL_F16=0|qk|pv|both), one binary, side by side with main's default:
#   base = main's default (quad, paired sums, early V for GQA, chunk model 264 / 528 / 1056),
#   qk   = Q.K in f16: K times f16 queries, head_dim/16 products per vector lane summed in
#          f16, lanes in f32 (no K -> f32 conversion: 128 conversions and 256 of 512 FMAs
#          per invocation per tile gone at Llama's shape),
#   pv   = P.V in f16: V times f16(p), a tile's 16 slots per invocation summed in f16,
#          added to the f32 accumulators once per tile (l stays f32; lazy margin 4),
#   both = qk + pv,
#   w396 = base with the GQA chunk model at 396 resident workgroups (Llama's 168
#          registers = 3 x 128-invocation workgroups per SM x 132 SMs; main assumes 264).
# Predictions (written before the call): `both` 0.85-0.92x base's time on Llama at
# B=16 16k (the rows session 10-11 read as issue-bound: 2 workgroups per SM stream as
# fast as 3), 0.93-1.0x at B=4 4k (latency-bound one-wave steps); Vicuna 0.95-1.0x
# (MHA does a quarter of the math per byte); SmolLM2 0.95-1.0x (latency-bound, 2-4 tile
# items); qk and pv each about half of both's gain; registers: `both` stays at 168
# (the compiler fills the 3-per-SM budget). w396: 0.97-1.05x of base (more, shorter
# items at B=4; session 10: 264 beat 1056 by 0.81x at B=4).
# Layers named in advance, as in sessions 9-11: Llama-3-8B 0/2/29 and Vicuna-7B 0/27 at
# B 16/4, 4k/16k (each list after a thrown-away layer 31), SmolLM2-135M 50% at 16 x 4096
# layers 29/0/6/9 (layer 1 thrown away), copy kernel in the same process.
# Carry folder .dev-s12-wgsl IN THE SESSION'S CHECKOUT: wgpu_decode_bench.gz (release,
# this branch), wgsl_table.py, .gl/ (libvulkan1 + libglvnd/libGLX debs), this script.
#   bash .dev-s12-wgsl/call1-wgsl.sh      (run tool: carry [".dev-s12-wgsl"], timeout_s 200)
unset MOA_WGSL_DECODE
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-170}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/s12w1; rm -rf $R; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
( for f in $C/.gl/*.deb; do dpkg -x $f /; done; ldconfig; ls /usr/local/nvidia/share/vulkan/icd.d/ ) > $R/vulkan-setup.txt 2>&1
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
S=plans/smollm2-135m-moa-50.toml
H=benches/decode-h200/wgsl-gqa-hd128.toml
B=/tmp/wgpu_decode_bench_s12
[ -x $B ] || { gzip -dc $C/wgpu_decode_bench.gz > $B && chmod +x $B; }
# (1) registers of each option: Llama layer 2, SmolLM2 layer 6, Vicuna layer 0.
{ for v in "base:MOA_WGSL_F16=0" "qk:MOA_WGSL_F16=qk" "pv:MOA_WGSL_F16=pv" "both:MOA_WGSL_F16=both"; do
    echo "== llama ${v%%:*}"; env ${v#*:} timeout $(cap 6) $B regs $L 8 2 2>&1 | tail -3
    echo "== smollm2 ${v%%:*}"; env ${v#*:} timeout $(cap 5) $B regs $S - 6 2>&1 | tail -2
    echo "== vicuna ${v%%:*}"; env ${v#*:} timeout $(cap 5) $B regs $V 32 0 2>&1 | tail -2
  done
} > $R/regs.txt 2>&1
grep -E "^==|Register|rror" $R/regs.txt | head -40; pack regs
# (2) the check against the CPU reference, margin 0 (the rescale path every tile).
{ env MOA_WGSL_F16=both MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 14) $B check plans/fixture-mha.toml plans/fixture-gqa.toml $H; echo "both margin 0 rc=$?"
  env MOA_WGSL_F16=both timeout $(cap 8) $B check plans/fixture-gqa.toml $H; echo "both margin default rc=$?"
} > $R/check.txt 2>&1
grep -E "rc=|FAIL|max" $R/check.txt | head -20; pack check
list() {
  local name=$1 secs=$2; shift 2
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  env "${envs[@]}" timeout $(cap $secs) $B "$@" > $R/$name.txt 2>&1
  echo "$name rc=$? $(grep -c '"wgpu-decode"' $R/$name.txt) rows"
  pack $name
}
LL="upstream $L 8 31,0,2,29 16,4 4096,16384"
SS="plan $S 1,29,0,6,9 16 4096"
VV="upstream $V 32 31,0,27 16,4 4096,16384"
list llama-base 10 MOA_WGSL_F16=0 -- $LL
grep -m2 "^copy" $R/llama-base.txt
list llama-both 8 MOA_WGSL_F16=both -- $LL
list smollm2-base 5 MOA_WGSL_F16=0 -- $SS
list smollm2-both 5 MOA_WGSL_F16=both MOA_WGSL_PARTS=step,decode,merge -- $SS
list vicuna-base 6 MOA_WGSL_F16=0 -- $VV
list vicuna-both 6 MOA_WGSL_F16=both -- $VV
list llama-qk 8 MOA_WGSL_F16=qk -- $LL
list llama-pv 8 MOA_WGSL_F16=pv -- $LL
list smollm2-qk 4 MOA_WGSL_F16=qk -- $SS
list smollm2-pv 4 MOA_WGSL_F16=pv -- $SS
list llama-w396 8 MOA_WGSL_F16=0 MOA_WGSL_CHUNKS=auto@396 -- $LL
list llama-both-w396 8 MOA_WGSL_F16=both MOA_WGSL_CHUNKS=auto@396 -- $LL
list vicuna-qk 5 MOA_WGSL_F16=qk -- $VV
list llama-base-aa 8 MOA_WGSL_F16=0 -- $LL
list smollm2-base-aa 4 MOA_WGSL_F16=0 -- $SS
T=$C/wgsl_table.py
{ python3 $T base=$R/llama-base.txt both=$R/llama-both.txt qk=$R/llama-qk.txt pv=$R/llama-pv.txt w396=$R/llama-w396.txt both-w396=$R/llama-both-w396.txt base-aa=$R/llama-base-aa.txt
  python3 $T --skip 1 base=$R/smollm2-base.txt both=$R/smollm2-both.txt qk=$R/smollm2-qk.txt pv=$R/smollm2-pv.txt base-aa=$R/smollm2-base-aa.txt
  python3 $T base=$R/vicuna-base.txt both=$R/vicuna-both.txt qk=$R/vicuna-qk.txt; } > $R/tables.txt 2>&1
cat $R/tables.txt; grep -h "only\]" $R/smollm2-both.txt
pack done
