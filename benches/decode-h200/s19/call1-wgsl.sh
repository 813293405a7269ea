#!/bin/bash
# Session 19, branch s19-wgsl, call 1 (one H200 through Vulkan): what holds the flat
# decode's registers, and its register-lean forms against the default in the engine.
#   END=150 bash .dev-s19-wgsl/call1-wgsl.sh   (run tool timeout_s >= END + 20)
# Carry `.dev-s19-wgsl` (filled by benches/decode-h200/s19/pack-wgsl.sh): wpe.gz, wdb.gz,
# gl/ (the Vulkan loader debs), this script.
#
# 1. regs of SmolLM2 moa-50 layer 6 (the driver's counts; in the background during the
#    first engine run), flat late form (MOA_WGSL_SG_FLAT=late): twin (loads only), piece
#    1 (Q.K partial scores), 2 (+ butterfly, masks), 3 (+ online softmax), full; the
#    lean forms: half (MOA_WGSL_SG_FLAT_HALF=1: 16-slot steps), its twin, vafter
#    (MOA_WGSL_SG_FLAT_VAFTER=1: V after the scores), half + vafter; early half.
# 2. The engine's step, one process a run (SmolLM2 shape, random weights, 16 x 4096,
#    moa-50, 64 greedy tokens, --profile 5, MOA_WGPU_COOP_ATTN=0): the two lean forms
#    with the fewest registers (A, B; ties: the order above) against the default:
#    def1 A1 B1 def2 B2 A2 def3 A3 B3, parity (--parity 24) in A1 and B1; then the half
#    twin (hrd1). END skips what does not fit, from the end.
# 3. wgpu_decode_bench check (fixture-gqa, fixture-mha, f32 and f16) for A and B.
#
# PREDICTIONS (written before the call; session 18: full 168, twin 80):
#   regs: piece 1 100-115 (twin + q 12 + 24 partials), piece 2 105-120, piece 3 120-140
#         (all 24 accumulators live and rescaled), full 168; half 105-125, half twin
#         50-60, vafter 110-130, half + vafter 95-115, early half 130-160.
#   attention us a layer (default 21.9-22.7): a form at <= 128 registers 19-24 (one
#         wave; half: 4 steps a subgroup instead of 2, so the chain is longer; vafter:
#         one more round trip a step); half twin 14-17. Parity ~0.05, argmax 3/3.
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-150}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=/tmp/s19wgsl; rm -rf "$R"; mkdir -p "$R"
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "/tmp/$b-s19wgsl" && chmod +x "/tmp/$b-s19wgsl" || { el "no $b.gz"; exit 1; }; done
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export MOA_WGPU_COOP_ATTN=0
P=plans/smollm2-135m-moa-50.toml
L="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late"
LR="MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_FLAT=late"
FORMS="twin:$LR|p1:$L MOA_WGSL_SG_PIECE=1|p2:$L MOA_WGSL_SG_PIECE=2|p3:$L MOA_WGSL_SG_PIECE=3|full:$L|half:$L MOA_WGSL_SG_FLAT_HALF=1|hrd:$LR MOA_WGSL_SG_FLAT_HALF=1|va:$L MOA_WGSL_SG_FLAT_VAFTER=1|hva:$L MOA_WGSL_SG_FLAT_HALF=1 MOA_WGSL_SG_FLAT_VAFTER=1|ehalf:MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=1 MOA_WGSL_SG_FLAT_HALF=1"
env_of() { [ "$1" = def ] && return; echo "$FORMS" | tr '|' '\n' | grep "^$1:" | cut -d: -f2; }
( IFS='|'; for f in $FORMS; do IFS=' '; n=${f%%:*}; e=${f#*:}
    r=$(env $e timeout 20 /tmp/wdb-s19wgsl regs $P - 6 2>&1 | grep -m1 -E "^regs layer 6|error|wgpu_decode_bench:")
    echo "$n $(echo "$r" | grep -o -E "Register_Count=[0-9]+" | cut -d= -f2) | $r"
  done ) > "$R/regs.txt" 2>&1 &
RP=$!
A=${A:-"--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"}
step() { local name=$1 form=$2 par=$3 cap=$4; left $(( END - cap )) || { el "skip $name"; return; }
  el "== $name ($(env_of $form))"; env $(env_of $form) timeout $cap /tmp/wpe-s19wgsl $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: |attention: " "$R/$name.txt" | head -3; }
step def1 def 0 30
wait $RP; el "regs done"; cat "$R/regs.txt" | cut -c1-60
# The two lean forms with the fewest registers (half, va, hva, ehalf), ties in that order.
pick=$(for n in half va hva ehalf; do c=$(grep "^$n " "$R/regs.txt" | awk '{print $2}'); [ -n "$c" ] && echo "$c $n"; done | sort -s -n -k1,1 | head -2 | awk '{print $2}')
Af=$(echo "$pick" | sed -n 1p); Bf=$(echo "$pick" | sed -n 2p); el "A=$Af B=$Bf"
RUNS="A1:$Af:24:30 B1:$Bf:24:30 def2:def:0:18 B2:$Bf:0:18 A2:$Af:0:18 def3:def:0:18 A3:$Af:0:18 B3:$Bf:0:18 hrd1:hrd:0:18"
for r in $RUNS; do IFS=: read -r name form par cap <<< "$r"; [ -n "$form" ] && step "$name" "$form" "$par" "$cap"; done
for f in $Af $Bf; do left $(( END - 12 )) || break
  env $(env_of $f) MOA_WGSL_SG_SIZE=32 timeout 12 /tmp/wdb-s19wgsl check plans/fixture-gqa.toml plans/fixture-mha.toml > "$R/check-$f.txt" 2>&1; el "check $f rc=$?"; tail -5 "$R/check-$f.txt"; done
printf "%-6s %-6s %6s %7s %7s %6s %6s %s\n" run form tok/s ms/st dev_us attn merge parity
for r in def1:def $(echo $RUNS | tr ' ' '\n' | cut -d: -f1,2); do name=${r%%:*}; form=${r#*:}; t=$R/$name.txt; [ -f "$t" ] || continue
  tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
  ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
  us() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
  per() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
  par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
  arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
  printf "%-6s %-6s %6s %7s %7s %6s %6s %s\n" $name $form "${tok:--}" "${ms:--}" "$(us step)" "$(per attention)" "$(per merge)" "${par:+$par,$arg}"
done | tee "$R/summary.txt"
tar czf "${OUT:-/tmp}/s19-wgsl-call1.tgz" -C "$R" . && cp "$R/summary.txt" "$R/regs.txt" "${OUT:-/tmp}/"
el done
