#!/bin/bash
# Device call 2 (session 13, branch s13-wgsl): call 1's fused-merge lists were cut while
# the driver built their pipelines (4-8 s caps, the copy kernel timed first: no row came
# back for smollm2-fused, smollm2-fv, llama-fused), so the same A/B again, with the fused
# merge's retries as one loop per batch (smaller code), longer caps for each variant's
# first list, and the pipeline build timed ("decode kernels (X s ...)").
#   base  = main's default (separate merge dispatch), PARTS=step,decode,merge,
#   fused = MOA_WGSL_FUSED_MERGE=1, fv = fused + MOA_WGSL_V_FIRST=1, vfirst alone.
# Predictions (as for call 1): SmolLM2 fused 0.80-0.88x base's time, fv 0.70-0.80x;
# Llama fused 0.90-0.96x at B=4 4k, 0.97-1.0x at B=16 16k. The check now also runs three
# steps back to back over one scratch (the last step's O, and the scratch left empty).
#   bash .dev-s13-wgsl/call2-wgsl.sh      (run tool: carry [".dev-s13-wgsl"], timeout_s 105)
unset MOA_WGSL_DECODE
C=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s)
END=${END:-90}
el() { echo $(( $(date +%s) - s )); }
cap() { local left=$(( END - $(el) )); [ "$1" -lt "$left" ] && echo "$1" || echo $(( left > 1 ? left : 1 )); }
R=/tmp/s13w2; rm -rf $R; mkdir -p $R
pack() { echo "$1 t=$(el)" | tee -a $R/log.txt; [ -n "$OUT" ] && tar -czf $OUT/results.tar.gz -C $R .; }
( for f in $C/gl/*.deb; do dpkg -x $f /; done; ldconfig; ls /usr/local/nvidia/share/vulkan/icd.d/ ) > $R/vulkan-setup.txt 2>&1
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
S=plans/smollm2-135m-moa-50.toml
B=/tmp/wgpu_decode_bench_s13b
[ -x $B ] || { gzip -dc $C/wgpu_decode_bench.gz > $B && chmod +x $B; }
F0=MOA_WGSL_FUSED_MERGE=0
F1=MOA_WGSL_FUSED_MERGE=1
VF=MOA_WGSL_V_FIRST=1
{ env $F1 MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 14) $B check plans/fixture-gqa.toml plans/fixture-mha.toml; echo "fused margin 0 rc=$?"
  env $F1 $VF MOA_WGSL_LAZY_MARGIN=0 timeout $(cap 8) $B check plans/fixture-gqa.toml; echo "fv margin 0 rc=$?"
} > $R/check.txt 2>&1
grep -E "rc=|FAIL|max" $R/check.txt | cut -c1-110; pack check
list() {
  local name=$1 secs=$2; shift 2
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  env "${envs[@]}" timeout $(cap $secs) $B "$@" > $R/$name.txt 2>&1
  echo "$name rc=$? $(grep -c '"wgpu-decode"' $R/$name.txt) rows $(grep -o '([0-9.]* s to build' $R/$name.txt)"
  pack $name
}
SS="plan $S 1,29,0,6,9 16 4096"
LL="upstream $L 8 31,2,29,0 16,4 4096,16384"
list smollm2-base 8 $F0 MOA_WGSL_PARTS=step,decode,merge -- $SS
list smollm2-fused 9 $F1 -- $SS
list smollm2-fv 9 $F1 $VF -- $SS
list smollm2-vfirst 7 $F0 $VF -- $SS
list smollm2-base-aa 5 $F0 -- $SS
list smollm2-fused-aa 5 $F1 -- $SS
list llama-base 10 $F0 -- $LL
list llama-fused 12 $F1 -- $LL
T=$C/wgsl_table.py
{ python3 $T --skip 1 base=$R/smollm2-base.txt fused=$R/smollm2-fused.txt fv=$R/smollm2-fv.txt vfirst=$R/smollm2-vfirst.txt base-aa=$R/smollm2-base-aa.txt fused-aa=$R/smollm2-fused-aa.txt
  python3 $T base=$R/llama-base.txt fused=$R/llama-fused.txt; } > $R/tables.txt 2>&1
cat $R/tables.txt; grep -h "only\]" $R/smollm2-base.txt | cut -c1-130
pack done
