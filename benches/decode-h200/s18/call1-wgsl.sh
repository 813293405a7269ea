#!/bin/bash
# Session 18, branch s18-wgsl, call 1 (one H200 through Vulkan): the flat decode on
# subgroups (decode_sg_flat.wgsl.j2, MOA_WGSL_SG_FLAT) against the default in the engine.
#   END=165 bash .dev-s18-wgsl/call1-wgsl.sh   (run tool timeout_s >= END + 15)
# Carry `.dev-s18-wgsl` (filled by benches/decode-h200/s18/pack-wgsl.sh): wpe.gz (release
# examples/wgpu_products_engine), wdb.gz (release examples/wgpu_decode_bench), gl/ (the
# Vulkan loader debs), this script.
#
# What runs, each step under `timeout` and started only while END leaves room:
# 1. regs (in the background during the first engine run): the driver's registers of
#    SmolLM2 moa-50 layer 6's decode: scalar default, sg, sg read, flat (early), flat
#    read, late, late read.
# 2. The engine's step, one process a run (SmolLM2 shape, random weights, 16 x 4096,
#    moa-50, 64 greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0), in this order:
#    def1 flrd1 fl1 def2 fl2 sgrd1 ltrd1 def3 fl3 lt1 fl128 (def = main's scalar decode; fl =
#    MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=1; flrd = its loads-only twin; sgrd = the
#    decode_sg.wgsl.j2 twin, 16.5 us in s16; lt/ltrd = the flat form with every block
#    after the row position; fl128 = fl over 128-slot chunks, one block a subgroup).
#    Parity (--parity 24) in def1, fl1, lt1. END skips what does not fit, from the end.
#
# PREDICTIONS (written before the call):
#   regs: scalar 102, sg 96, sg read 56 (as s17); flat 105-120 (q in 12 f16 registers
#         and the butterfly's partial scores added to sg's 96), flat read 65-80, late
#         100-115, late read 60-70. All <= 128: 4 workgroups an SM, one wave.
#   attention us a layer: def 21.8-22.3; sgrd 16.3-16.8; flrd 11-14 (two round trips
#         fewer in the item's chain and coalesced K); ltrd 12.5-15; fl 16-20 (the twin
#         + ~5-6 of math); lt 17-21. Device step: fl 1.55-1.67 ms against def's
#         1.70-1.72. Parity ~0.05, argmax 3/3. fl128: 17-22 (one round a subgroup,
#         twice the items: 1.5 waves; the merge ~+0.5).
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-165}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=/tmp/s18wgsl; rm -rf "$R"; mkdir -p "$R"
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "/tmp/$b-s18wgsl" && chmod +x "/tmp/$b-s18wgsl" || { el "no $b.gz"; exit 1; }; done
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export MOA_WGPU_COOP_ATTN=0
P=plans/smollm2-135m-moa-50.toml
( for f in "scalar:" "sg:MOA_WGSL_SG_DECODE=1" "sg-read:MOA_WGSL_SG_DECODE=read" \
      "flat:MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=1" "flat-read:MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_FLAT=1" \
      "late:MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late" "late-read:MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_FLAT=late"; do
    n=${f%%:*}; e=${f#*:}
    env $e timeout 15 /tmp/wdb-s18wgsl regs $P - 6 2>&1 | sed "s/^/$n: /"
  done ) > "$R/regs.txt" 2>&1 &
RP=$!
A=${A:-"--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"}
env_of() { case $1 in def) echo "";;
  fl) echo "MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=1";; flrd) echo "MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_FLAT=1";;
  lt) echo "MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late";; ltrd) echo "MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_FLAT=late";;
  sgrd) echo "MOA_WGSL_SG_DECODE=read";; fl128) echo "MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=1 MOA_WGPU_DECODE_CHUNK=128";; esac; }
step() { local name=$1 form=$2 par=$3 cap=$4; left $(( END - cap )) || { el "skip $name"; return; }
  el "== $name"; env $(env_of $form) timeout $cap /tmp/wpe-s18wgsl $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: |attention: " "$R/$name.txt" | head -3; }
RUNS=${RUNS:-"def1:def:24:45 flrd1:flrd:0:25 fl1:fl:24:30 def2:def:0:18 fl2:fl:0:18 sgrd1:sgrd:0:25 ltrd1:ltrd:0:25 def3:def:0:18 fl3:fl:0:18 lt1:lt:24:30 fl128:fl128:0:20"}
first=1
for r in $RUNS; do IFS=: read -r name form par cap <<< "$r"; step "$name" "$form" "$par" "$cap"
  if [ $first = 1 ]; then first=0; wait $RP; el "regs done"; grep -E "regs|error|wgpu_decode_bench:" "$R/regs.txt" | sed -E 's/(exec0=[^,]*, )?//' | cut -c1-200; fi
done
printf "%-6s %6s %7s %7s %6s %6s %6s %6s %6s %6s %6s %6s %s\n" run tok/s ms/st dev_us attn merge qkv out gateup down head probe parity
for r in $RUNS; do name=${r%%:*}; t=$R/$name.txt; [ -f "$t" ] || continue
  tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
  ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
  us() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
  per() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
  par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
  arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
  printf "%-6s %6s %7s %7s %6s %6s %6s %6s %6s %6s %6s %6s %s\n" $name "${tok:--}" "${ms:--}" "$(us step)" "$(per attention)" \
    "$(per merge)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "$(per head)" "$(per probe)" "${par:+$par,$arg}"
done | tee "$R/summary.txt"
tar czf "${OUT:-/tmp}/s18-wgsl-call1.tgz" -C "$R" . && cp "$R/summary.txt" "${OUT:-/tmp}/s18-wgsl-summary.txt"
el done
