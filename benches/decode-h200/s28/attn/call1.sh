#!/bin/bash
# Session 28, branch s28-attn, call 1 (one H200 through Vulkan).
#   END=175 bash .dev-s28-attn/call1.sh   (run tool timeout_s >= END + 15; carry filled by
#   BIN=/tmp/s28-attn-bin bash benches/decode-h200/s28/attn/pack.sh)
# The decode step (SmolLM2 shape, 16 x 4096, moa-50): 1.41-1.46 ms, 153 dispatches; the
# attention (flat form, fused merge, words, class maxima) 19.7-20.3 us a layer at 126
# registers: 2 workgroups of 256 an SM = 16 warps.
# MODEL (written before the call):
#   bytes: one layer's kept K and V of 16 rows = 25.9 MB; at the copy's 4.1 TB/s 6.3 us; a
#     pure read of one layer in one dispatch 9.7-11.4 us (s20 `stream`: floor ~2.2 + start).
#   what the rest is: a lane holds 4 16-byte words in flight (K, then V into the same
#     registers): 16 warps x 32 x 64 B = 32 KB an SM, 4.3 MB over 132 SMs, so even with every
#     lane loading the layer is >= 6 dependent DRAM round trips. The item's chain: work words
#     (L2) -> row position, Q (L2) -> per step: K (DRAM) -> Q.K, butterfly, maxima -> V
#     (DRAM) -> P.V; chunks ~256-704 slots at 128 a round: the slowest subgroups take 4-6
#     steps = 8-12 DRAM round trips in series (~0.8-1 us each under load), then the combine,
#     the counter and the fused merge's tail (~3 us, s24). So: floor 2.2 + start ~1 +
#     round trips ~8 + math ~2.5 (s24 pieces: Q.K 0.9, butterfly+masks 2.6, softmax) + tail
#     ~3 ~= 17-20: the chain of round trips is the largest part; the loads-only twin (K and
#     V issued together: one round trip a step, 128 B a lane) took 14.2 (s24).
#   lever: MOA_WGSL_SG_FLAT_PREFETCH=1 (P, exists since s14/s20, never timed on the current
#     form): the next step's K issued with this step's V: a step is one round trip, not two
#     (4 steps: 5 instead of 8) and 128 B a lane in flight under P.V. Its cost is K's 16
#     registers live beside V's: s20 measured +16 (80 -> 96). At 126 that would pass 128 (1
#     workgroup an SM, 8 warps: a sure loss), so this branch adds MOA_WGSL_SG_FLAT_QPACK=1
#     (Q): the queries held as packed f16 words (12 registers, not 24 f32 if the driver
#     hoists the widening), widened in each step (3 x 8 conversions + 12 xor a lane a step).
# 1. regs (layer 6, subgroup 32, the engine's form: fused, words, class maxima): def, P, Q, PQ.
#    X = P if P <= 128 registers, else PQ. `check` of X (fixture-gqa, fixture-mha; f32, f16).
# 2. the engine's step (random weights, 16 x 4096, moa-50, 64 greedy tokens, --profile 5,
#    MOA_WGPU_COOP_ATTN=0), one process a run: def1 X1 (parity 24) | X2 def2 | def3 X3 |
#    X4 def4 (A B B A).
# 3. if time is left: wgpu_decode_bench plan (layer 6, rows at 4159, random caches, the
#    decode dispatch alone, fused) of def and X against the copy kernel.
# PREDICTIONS:
#   regs: def 126; P 132-142; Q 114-124; PQ 120-130 (<= 128 in the better half).
#   def: attention 19.7-20.3 us a layer, step 1.40-1.46 ms, parity 0.0496, argmax 3/3.
#   X at <= 128 registers: attention 17.5-19.3 (-0.5..-2.5 us a layer; the round trips it
#     removes, less Q's conversions), step -15..-75 us, tok/s +1..+5%; parity 0.0496, 3/3
#     (the same values, the same products). X above 128: +4..+10 us a layer (1 workgroup an SM).
#   bench: def's decode 17-19 us (0.33-0.37 of the copy), X 1-2.5 us under it.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s28attn1}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-175}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s28-attn-${CALL:-call1}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "$B/$b" && chmod +x "$B/$b" || { el "no $b.gz"; exit 1; }; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start
P=plans/smollm2-135m-moa-50.toml
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late MOA_WGSL_FUSED_MERGE=1 MOA_WGSL_SG_FLAT_WORDS=1 MOA_WGSL_SG_FLAT_CMAX=1"
declare -A VE=([def]="" [P]="MOA_WGSL_SG_FLAT_PREFETCH=1" [Q]="MOA_WGSL_SG_FLAT_QPACK=1"
  [PQ]="MOA_WGSL_SG_FLAT_PREFETCH=1 MOA_WGSL_SG_FLAT_QPACK=1")
declare -A RG
for n in ${FORMS:-def P Q PQ}; do
  r=$(env $F ${VE[$n]} timeout 20 $B/wdb regs $P - 6 2>&1 | grep -m1 -E "^regs layer [0-9]|error")
  echo "$n $r" >> "$R/regs.txt"; el "regs $n: $(echo "$r" | cut -c1-160)"
  RG[$n]=$(echo "$r" | grep -o -E "Register_Count=[0-9]+" | head -1 | cut -d= -f2)
done
X=${X:-}
if [ -z "$X" ]; then if [ -n "${RG[P]}" ] && [ "${RG[P]}" -le 128 ]; then X=P; else X=PQ; fi; fi
el "X = $X (${VE[$X]}; registers ${RG[$X]:-?})"; echo "X=$X ${VE[$X]}" > "$R/choice.txt"
left 60 && { env $F ${VE[$X]} timeout 20 $B/wdb check plans/fixture-gqa.toml plans/fixture-mha.toml > "$R/check-$X.txt" 2>&1
  el "check $X rc=$?: $(grep -E 'max .error|check pass|check FAIL' "$R/check-$X.txt" | grep -o -E 'max .error. [0-9.e-]+|check [a-zA-Z]+' | tr '\n' ' ')"; }
save
export MOA_WGPU_COOP_ATTN=0
A=${A:-"--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"}
envof() { case $1 in def*) echo "MOA_WGPU_COOP_ATTN=0";; X*) echo "${VE[$X]}";; esac; }
step() { local name=$1 par=$2 cap=$3; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name)" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: " "$R/$name.txt" | cut -c1-200 | head -2; save; }
RUNS=${RUNS:-"def1:24:32 X1:24:22 X2:0:14 def2:0:14 def3:0:14 X3:0:14 X4:0:14 def4:0:14"}
for r in $RUNS; do IFS=: read -r n p c <<< "$r"; step "$n" "$p" "$c"; done
bench() { local name=$1; left 14 || { el "skip bench $name"; return; }
  env $F $(envof $name) MOA_WGSL_KV_RANDOM=1 MOA_WGSL_PARTS=decode timeout 12 $B/wdb plan $P 6 16 4160 > "$R/bench-$name.txt" 2>&1
  el "bench $name rc=$?"; grep -E "^layer 6|copy" "$R/bench-$name.txt" | cut -c1-200 | head -3; save; }
for b in ${BENCH:-def X}; do bench $b; done
summary() { printf "%-5s %6s %7s %5s %7s %6s %6s %5s %5s %5s %5s %s\n" run tok/s ms/st disp dev_us attn merge qkv out gu down parity
  for r in $RUNS; do IFS=: read -r name _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    di=$(grep -o -E "[0-9]+ dispatches/step" "$t" | head -1 | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-5s %6s %7s %5s %7s %6s %6s %5s %5s %5s %5s %s\n" $name "${tok:--}" "${ms:--}" "${di:--}" "$(us step)" "$(per attention)" "$(per merge)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "${par:+$par,$arg}"
  done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
