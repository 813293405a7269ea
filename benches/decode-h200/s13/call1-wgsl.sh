#!/bin/bash
# Device call 1 (session 13, branch s13-wgsl): the WGSL decode's SmolLM2-135M rows (issue 8
# item 3, issue 12's decode step), one binary, side by side with main's default:
#   base   = main's default (quad, paired sums, early V for GQA, f16 products, separate
#            merge dispatch),
#   fused  = MOA_WGSL_FUSED_MERGE=1: each segment's last item merges into O (per-segment
#            arrival counter; partials exchanged through atomic stores/loads, emptied by the
#            merger): one dispatch a step, no first-item search, no barrier between two
#            dispatches,
#   vfirst = MOA_WGSL_V_FIRST=1: each tile's V loads issued right behind its K loads at the
#            tile's start (one memory round trip per tile for both products instead of
#            K, then V before the last barrier),
#   fv     = fused + vfirst; fv-wN = fv with the chunk model at N resident workgroups.
# Predictions (written before the call):
#   SmolLM2 16 x 4096 (layers 29/0/6/9; 16.5-28 us a step, of which the merge dispatch
#   4.8-5.5): fused 0.80-0.88x base's time (the merge dispatch and its barrier, ~5 us,
#   replaced by a ~1-1.5 us tail: counter + one batch of partial loads); vfirst 0.85-0.95x
#   (1-3 tiles an item, ~1.5 us saved per tile); fv 0.70-0.80x (SmolLM2 0.22-0.45 of
#   the copy: still below 0.70); registers of SmolLM2 layer 6: 102 -> ~125-135 with vfirst.
#   fv-w264 (longer chunks, fewer merges) and fv-w1056: within 0.95-1.05 of fv.
#   Llama-3-8B: fused 0.90-0.96x at B=4 4k (25-38 us steps), 0.97-1.0x at B=16 16k; fv
#   slower than fused on Llama (168-register budget: V held through Q.K spills or
#   drops to 2 workgroups per SM), 1.05-1.2x. Vicuna-7B: fused 0.95-1.0x.
# Layers named in advance, as in sessions 9-12: SmolLM2-135M 50% at 16 x 4096 layers
# 29/0/6/9 (layer 1 thrown away); Llama-3-8B 2/29/0 and Vicuna-7B 0/27 at B 16/4,
# 4k/16k (each list after a thrown-away layer 31); copy kernel in the same process.
# Carry folder .dev-s13-wgsl IN THE SESSION'S CHECKOUT: wgpu_decode_bench.gz (release,
# this branch), wgsl_table.py, gl/ (libvulkan1 + libglvnd/libGLX debs), this script.
#   bash .dev-s13-wgsl/call1-wgsl.sh      (run tool: carry [".dev-s13-wgsl"], timeout_s 170)
unset MOA_WGSL_DECODE
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-150}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/s13w1; rm -rf $R; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
( for f in $C/gl/*.deb; do dpkg -x $f /; done; ldconfig; ls /usr/local/nvidia/share/vulkan/icd.d/ ) > $R/vulkan-setup.txt 2>&1
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
S=plans/smollm2-135m-moa-50.toml
H=benches/decode-h200/wgsl-gqa-hd128.toml
B=/tmp/wgpu_decode_bench_s13
[ -x $B ] || { gzip -dc $C/wgpu_decode_bench.gz > $B && chmod +x $B; }
F0=MOA_WGSL_FUSED_MERGE=0
F1=MOA_WGSL_FUSED_MERGE=1
VF=MOA_WGSL_V_FIRST=1
# (1) registers: SmolLM2 layer 6 of each option, Llama layer 2 with fused / fv.
{ for v in "base:$F0" "fused:$F1" "vfirst:$F0 $VF" "fv:$F1 $VF"; do
    echo "== smollm2 ${v%%:*}"; env ${v#*:} timeout $(cap 5) $B regs $S - 6 2>&1 | tail -2
  done
  for v in "fused:$F1" "fv:$F1 $VF"; do
    echo "== llama ${v%%:*}"; env ${v#*:} timeout $(cap 5) $B regs $L 8 2 2>&1 | tail -2
  done
} > $R/regs.txt 2>&1
grep -E "^==|regs layer|rror" $R/regs.txt | head -30; pack regs
# (2) the check of the fused merge against the CPU reference, margin 0 (the rescale path
# every tile): chunks as the host picks them, of 1 and 3 tiles, whole segments.
{ env $F1 MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 16) $B check plans/fixture-gqa.toml $H plans/fixture-mha.toml; echo "fused margin 0 rc=$?"
  env $F1 $VF MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 10) $B check plans/fixture-gqa.toml $H; echo "fv margin 0 rc=$?"
} > $R/check.txt 2>&1
grep -E "rc=|FAIL|max" $R/check.txt | head -20; pack check
list() {
  local name=$1 secs=$2; shift 2
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  env "${envs[@]}" timeout $(cap $secs) $B "$@" > $R/$name.txt 2>&1
  echo "$name rc=$? $(grep -c '"wgpu-decode"' $R/$name.txt) rows"
  pack $name
}
SS="plan $S 1,29,0,6,9 16 4096"
LL="upstream $L 8 31,2,29,0 16,4 4096,16384"
VV="upstream $V 32 31,0,27 16,4 4096,16384"
list smollm2-base 5 $F0 MOA_WGSL_PARTS=step,decode,merge -- $SS
grep -m2 "^copy" $R/smollm2-base.txt
list smollm2-fused 4 $F1 -- $SS
list smollm2-vfirst 4 $F0 $VF -- $SS
list smollm2-fv 4 $F1 $VF -- $SS
list smollm2-fv-w264 4 $F1 $VF MOA_WGSL_CHUNKS=auto@264 -- $SS
list smollm2-fv-w1056 4 $F1 $VF MOA_WGSL_CHUNKS=auto@1056 -- $SS
list smollm2-base-aa 4 $F0 -- $SS
list llama-base 9 $F0 -- $LL
list llama-fused 8 $F1 -- $LL
list vicuna-base 6 $F0 -- $VV
list vicuna-fused 6 $F1 -- $VV
list llama-fv 8 $F1 $VF -- $LL
list smollm2-fused-aa 4 $F1 -- $SS
T=$C/wgsl_table.py
{ python3 $T --skip 1 base=$R/smollm2-base.txt fused=$R/smollm2-fused.txt vfirst=$R/smollm2-vfirst.txt fv=$R/smollm2-fv.txt fv-w264=$R/smollm2-fv-w264.txt fv-w1056=$R/smollm2-fv-w1056.txt base-aa=$R/smollm2-base-aa.txt fused-aa=$R/smollm2-fused-aa.txt
  python3 $T base=$R/llama-base.txt fused=$R/llama-fused.txt fv=$R/llama-fv.txt
  python3 $T base=$R/vicuna-base.txt fused=$R/vicuna-fused.txt; } > $R/tables.txt 2>&1
cat $R/tables.txt; grep -h "only\]" $R/smollm2-base.txt
pack tables
# (3) the check of fv on every SmolLM2 layer (lowest priority: 30 pipelines on a fresh driver).
{ env $F1 $VF timeout $(cap 20) $B check $S; echo "fv smollm2 rc=$?"; } > $R/check-smollm2.txt 2>&1
grep -E "rc=|FAIL|max" $R/check-smollm2.txt | head; pack done
