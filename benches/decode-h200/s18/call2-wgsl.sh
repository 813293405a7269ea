#!/bin/bash
# Session 18, branch s18-wgsl, call 2 (one H200 through Vulkan): the flat decode's
# register-lean choices (MOA_WGSL_SG_FLAT_LEAN bit mask: 1 P.V summed per block in f16,
# 2 queries in workgroup memory, 4 each block's loads after the previous block's P.V).
#   END=70 bash .dev-s18-wgsl/call2-wgsl.sh   (run tool timeout_s >= END + 15)
# Carry as call1-wgsl.sh (pack-wgsl.sh).
# 1. regs of layer 6 (SmolLM2 moa-50): late with lean 1, 2, 4, 7 and early with 7.
# 2. The real form with the fewest registers (ties: late first, then the lower mask)
#    against the default in the engine's step, one process a run: def1 best1 def2 best2,
#    then (END allowing) its loads-only twin and the second fewest.
# Call 1 measured: flat (early) 168 registers, 30.2-30.3 us a layer; late 168, 28.8;
# late's twin 80, 14.96 (sg's twin 56, 16.48); default 21.9.
# PREDICTIONS (before the call): lean 1 -> 140-160 (V not widened: -16..-32); lean 2 ->
# 156-168 (or unchanged if the driver forwards the stores); lean 4 -> 100-130 if the 168
# is two blocks held at once, else unchanged; lean 7 -> 96-120. The best at <= 128
# registers: 19-23 us a layer (the twin's 15 + ~5-7 of math), i.e. a tie with the
# default's 21.9 at best; above 128: 25-30.
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-70}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=/tmp/s18wgsl2; rm -rf "$R"; mkdir -p "$R"
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "/tmp/$b-s18wgsl" && chmod +x "/tmp/$b-s18wgsl" || { el "no $b.gz"; exit 1; }; done
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export MOA_WGPU_COOP_ATTN=0
P=plans/smollm2-135m-moa-50.toml
VARS=${VARS:-"late:1 late:2 late:4 late:7 1:7"}
for v in $VARS; do f=${v%%:*}; l=${v#*:}
  r=$(MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=$f MOA_WGSL_SG_FLAT_LEAN=$l timeout 15 /tmp/wdb-s18wgsl regs $P - 6 2>&1 | tee -a "$R/regs.txt" | grep -m1 "regs layer 6" | grep -o -E "Register_Count=[0-9]+" | cut -d= -f2)
  echo "$f:$l ${r:-999}" | tee -a "$R/regs-sum.txt"
done
el "regs done"
best=$(sort -k2,2n -s "$R/regs-sum.txt" | head -1 | cut -d' ' -f1)
second=$(sort -k2,2n -s "$R/regs-sum.txt" | sed -n 2p | cut -d' ' -f1)
el "best $best, second $second"
A=${A:-"--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"}
env_of() { case $1 in def) echo "";; *:*:read) v=${1%:read}; echo "MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_FLAT=${v%%:*} MOA_WGSL_SG_FLAT_LEAN=${v#*:}";;
  *) echo "MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=${1%%:*} MOA_WGSL_SG_FLAT_LEAN=${1#*:}";; esac; }
step() { local name=$1 form=$2 par=$3 cap=$4; left $(( END - cap )) || { el "skip $name"; return; }
  el "== $name ($form)"; env $(env_of $form) timeout $cap /tmp/wpe-s18wgsl $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: |attention: " "$R/$name.txt" | head -3; }
# RUNSPEC: name/form/parity tokens/cap, BEST and SECOND replaced by the picks above (a
# cold machine: END=55 with "best1/BEST/0/35 def1/def/0/16 best2/BEST/0/12").
RUNSPEC=${RUNSPEC:-"def1/def/0/18 best1/BEST/24/25 def2/def/0/15 best2/BEST/0/15 bestrd/BEST:read/0/18 sec1/SECOND/0/20"}
RUNS=$(echo "$RUNSPEC" | sed "s/BEST/$best/g; s/SECOND/$second/g")
for r in $RUNS; do IFS=/ read -r name form par cap <<< "$r"; step "$name" "$form" "$par" "$cap"; done
printf "%-6s %6s %7s %7s %6s %6s %6s %6s %6s %6s %6s %6s %s\n" run tok/s ms/st dev_us attn merge qkv out gateup down head probe parity
for r in $RUNS; do name=${r%%/*}; t=$R/$name.txt; [ -f "$t" ] || continue
  tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
  ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
  us() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
  per() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
  par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
  arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
  printf "%-6s %6s %7s %7s %6s %6s %6s %6s %6s %6s %6s %6s %s\n" $name "${tok:--}" "${ms:--}" "$(us step)" "$(per attention)" \
    "$(per merge)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "$(per head)" "$(per probe)" "${par:+$par,$arg}"
done | tee "$R/summary.txt"
cat "$R/regs-sum.txt" >> "$R/summary.txt"
tar czf "${OUT:-/tmp}/s18-wgsl-call2.tgz" -C "$R" . && cp "$R/summary.txt" "${OUT:-/tmp}/s18-wgsl-summary2.txt"
el done
