#!/bin/bash
# Session 20, branch s20-wgsl, call 2 (one H200 through Vulkan): the flat decode with 8
# subgroups a workgroup under the work list it needs. Call 1: 8 subgroups won in the
# bench (sequence 17.3-17.7 against 20.4-20.8 us a layer, rows at 4095, zero caches) and
# lost in the engine (20.5-21.2 against 19.4-19.5); its twin won in both (engine 12.7).
# At the engine's N = 4160 the work-list model (528 resident workgroups assumed) gives
# 400-528 items in most layers, over the 396 that 256-invocation workgroups at 80
# registers keep resident (3 an SM): a second wave. Here the model is given 396
# (MOA_WGPU_DECODE_RESIDENT / the bench's auto@396), and the bench fills the caches with
# random values (MOA_WGSL_KV_RANDOM=1) as well as zeros.
#   END=120 bash .dev-s20-wgsl/call2-wgsl.sh   (run tool timeout_s >= END + 20)
# 1. wgpu_decode_bench plan, rows at 4159 (N = 4160: the engine's lists), layers
#    5,6,13,28 (528, 432, 496, 496 items at 528), decode alone and in sequence:
#    def (random: auto, auto@396, auto@792), s8 (random: auto, auto@396, auto@264),
#    def and s8 over zeros (auto, auto@396), rd8 (random, auto@396).
# 2. The engine's step (as call 1): def1 w1 def2 w2 def3 w3 dw1, w = 8 subgroups with
#    MOA_WGPU_DECODE_RESIDENT=396 (parity 24 in w1), dw = the default with 792 (6
#    workgroups of 128 an SM at 80 registers).
# PREDICTIONS (written before the call):
#   bench: random caches make def and s8 slower than zeros by 2-4 us a layer in the
#     sequence (the engine's gap); s8 at auto@396 1.5-3 us under s8 at auto (fewer
#     items than resident); def at auto@792 within 0.5 us of auto.
#   engine attention: def 19.3-19.6; w 17.0-18.5 (step -30..-75 us); dw 19.0-19.8.
D=$(cd "$(dirname "$0")" && pwd)
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*"; }
END=${END:-120}
left() { [ $(( $(date +%s) - s )) -lt "$1" ]; }
R=/tmp/s20wgsl2; rm -rf "$R"; mkdir -p "$R"
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "/tmp/$b-s20wgsl" && chmod +x "/tmp/$b-s20wgsl" || { el "no $b.gz"; exit 1; }; done
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
export MOA_WGPU_COOP_ATTN=0
save() { tar czf "${OUT:-/tmp}/s20-wgsl-call2.tgz" -C "$R" . 2>/dev/null; }
P=plans/smollm2-135m-moa-50.toml
L="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late"
FORMS="def:$L|s8:$L MOA_WGSL_SG_FLAT_SUBGROUPS=8|rd8:MOA_WGSL_SG_DECODE=read MOA_WGSL_SG_FLAT=late MOA_WGSL_SG_FLAT_SUBGROUPS=8|w:MOA_WGSL_SG_FLAT_SUBGROUPS=8 MOA_WGPU_DECODE_RESIDENT=396|dw:MOA_WGPU_DECODE_RESIDENT=792"
env_of() { echo "$FORMS" | tr '|' '\n' | grep "^$1:" | cut -d: -f2; }
bench() { local name=$1 form=$2 chunks=$3 rnd=$4; left $(( END - 75 )) || { el "skip bench $name"; return; }
  env $(env_of $form) MOA_WGSL_KV_RANDOM=$rnd MOA_WGSL_CHUNKS=$chunks MOA_WGSL_PARTS=decode MOA_WGSL_SEQUENCE=1 timeout 25 \
    /tmp/wdb-s20wgsl plan $P 5,6,13,28 16 4160 > "$R/bench-$name.txt" 2>&1; el "bench $name rc=$?"
  grep -E "^sequence" "$R/bench-$name.txt" | cut -c1-130; }
for b in defr:def:auto,auto@396,auto@792:1 s8r:s8:auto,auto@396,auto@264:1 def0:def:auto,auto@396:0 s80:s8:auto,auto@396:0 rd8r:rd8:auto@396:1; do
  IFS=: read -r name form chunks rnd <<< "$b"; bench "$name" "$form" "$chunks" "$rnd"; done
save
A=${A:-"--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"}
step() { local name=$1 form=$2 par=$3 cap=$4; left $(( END - cap )) || { el "skip $name"; return; }
  el "== $name ($(env_of $form))"; env $(env_of $form) timeout $cap /tmp/wpe-s20wgsl $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: |attention: " "$R/$name.txt" | head -3; save; }
RUNS="def1:def:0:30 w1:w:24:22 def2:def:0:16 w2:w:0:16 def3:def:0:16 w3:w:0:16 dw1:dw:0:16"
for r in $RUNS; do IFS=: read -r name form par cap <<< "$r"; step "$name" "$form" "$par" "$cap"; done
{ echo "bench (rows at 4159, layers 5,6,13,28: layer 6's decode alone; the sequence's decode + merge, us a layer)"
  for f in "$R"/bench-*.txt; do n=$(basename "$f" .txt); n=${n#bench-}
    grep -E "^sequence" "$f" | sed -E "s/^sequence of 4 layers B=16 prompt 4160 \(N=4160, chunk ([^)]*)\) \(([0-9]+) MB KV, ([0-9]+) items\): .* = ([0-9.]+) us per layer.*/$n \1: \4 us a layer, \3 items/"
    grep -E "^layer 6 " "$f" | sed -E "s/^layer 6 .*chunk ([^,]*), ([0-9]+) items\) \[decode only\]: ([0-9.]+) us per step.*/$n layer 6 chunk \1: \3 us, \2 items/"
  done
  printf "%-6s %-6s %6s %7s %7s %6s %6s %s\n" run form tok/s ms/st dev_us attn merge parity
  for r in $RUNS; do IFS=: read -r name form _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    us() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-6s %-6s %6s %7s %7s %6s %6s %s\n" $name $form "${tok:--}" "${ms:--}" "$(us step)" "$(per attention)" "$(per merge)" "${par:+$par,$arg}"
  done; } | tee "$R/summary.txt"
save; cp "$R/summary.txt" "${OUT:-/tmp}/" 2>/dev/null
el done
