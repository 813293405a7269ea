#!/bin/bash
# Session 29, branch s29-attn, call 1 (one H200 through Vulkan).
#   END=150 bash .dev-s29-attn/call1.sh   (run tool timeout_s >= END + 15; carry filled by
#   BIN=/tmp/s29-attn-bin bash benches/decode-h200/s29/attn/pack.sh)
# The decode step (SmolLM2 shape, 16 x 4096, moa-50): 1.418-1.449 ms, 153 dispatches, 17.5%
# of the memory roofline; the attention (flat form, fused merge, words, class maxima)
# 20.0-20.2 us a layer at 126 registers: 2 workgroups of 256 an SM = 16 warps.
# MODEL (written before the call):
#   bytes: a layer's kept K and V of 16 rows at N = 4160: 740.5 MiB / 30 = 25.9 MB; at the
#     copy's 4.1 TB/s 6.3 us; a pure read of one layer in one dispatch 9.7-11.4 us (s20).
#   occupancy x loads in flight (Little): at R registers an SM holds
#     min(floor(65536 / (ceil8(R) x 256)), 8) workgroups of 256: R <= 128 -> 2 (16 warps),
#     R <= 80 -> 3 (24 warps). A lane has nl x 16 B in flight during a step's K (then V):
#       def (nl 4, 2 an SM): 16 x 32 x 64 B = 32 KB an SM = 4.3 MB on 132 SMs
#       nl 2 at 3 an SM:      24 x 32 x 32 B = 24 KB an SM = 3.2 MB  (0.75x)
#       nl 1 at 3 an SM:      24 x 32 x 16 B = 12 KB an SM = 1.6 MB  (0.38x)
#       nl 4 at 3 an SM:      48 KB an SM (1.5x), but Q alone takes 101 registers.
#     At ~0.8 us a DRAM round trip under load, 4.3 MB in flight would carry 5.4 TB/s; the
#     form reaches 1.29 TB/s, so at most ~25% of its time has every lane loading: the
#     rest is math and chain, which more warps hide. So a 3-workgroup form pays only if
#     its added warps hide more math than its fewer loads a step lose: nl 2 at 3 an SM
#     about a tie, nl 1 at 3 an SM a loss (4x the steps' shuffles and maxima, 0.38x the
#     bytes in flight).
#   registers (predicted; s26: N2 + C 115, N1 + C 106 against 126; s26 lead call:
#     h16-reload 80 unfused, 93 fused; s28: Q 101): Q 101; QN2 88-95; QN1 80-88; the
#     separate merge (u) -2..-13 where the fused tail sets the floor; merge batch 4 / 2
#     (b4, b2: 12 / 6 words polled a lane instead of 24) -3..-12 where the tail sets it.
#     Reaches <= 80: QN1b2 or QN1u (even odds), QN2*: no, Q*: no.
# 1. regs (layer 6, subgroup 32; the engine's form: fused, words, class maxima) of the
#    forms below; the driver's internal representation of def and of X (MOA_WGSL_REGS_IR;
#    NVIDIA may give none). X = the first of PREF at <= 80 registers, told 396 resident
#    (3 workgroups an SM); if none, X = Q at the default 264 (what its conversions cost at
#    the same residency: a piece of the road). `check` of X.
# 2. the engine's step (random weights, 16 x 4096, moa-50, 64 greedy tokens, --profile 5,
#    MOA_WGPU_COOP_ATTN=0), one process a run: def1 X1 | X2 def2 | def3 X3 (A B B A), a
#    fourth pair if time is left.
#    PREDICTED: def attention 19.7-20.3 us a layer, step 1.40-1.46 ms, parity 0.0496 3/3.
#    X from QN1* at 396: attention +1..+4 us a layer (21-24), step +30..+120 us.
#    X from QN2* at 396: -1..+1 (a tie). X = Q at 264: +0..+0.6 (24 conversions and 12
#    xor a lane a step, the same occupancy). Parity of X 0.045-0.055, 3/3 (same values).
# 3. the tail (wgpu_decode_bench plan, layer 6, rows at 4159, random caches, the decode
#    dispatch alone; MOA_WGSL_ITEMS: each kept item its own one-chunk segment):
#    a. fused default, chunks auto (512, 240 items), 256, 384, 768; items all and all1.
#       PREDICTED: auto 17-19 us; 256 +1..+3 (past one wave), 384 -0.5..+1.5, 768 +2..+5;
#       all1 (every item merges itself, no counter waits) within -1..+1 of all.
#    b. the separate merge's decode alone over items all, sorted, long:1, long:8, long:48,
#       long:132, long:198, short:120.
#       PREDICTED: all 15-17; sorted = all +-0.5; long:1 (one 512-slot item alone:
#       launch ~2 + words and q ~1 + 4 steps x 2 DRAM trips x ~0.6 + combine) 7-10;
#       long:132 (one full chunk an SM) 11-14; long:198 13-16; short:120 6-10.
#       Reading: long:1 / all is the share of the dispatch that is one item's chain with
#       nothing beside it; all - long:132 what sharing an SM with a second item adds.
#    c. X's decode at auto@396 (the chunk the engine picks for it) against def at auto.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s29attn1}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-150}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s29-attn-${CALL:-call1}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in wpe wdb; do gunzip -c "$D/$b.gz" > "$B/$b" && chmod +x "$B/$b" || { el "no $b.gz"; exit 1; }; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start
P=plans/smollm2-135m-moa-50.toml
F="MOA_WGSL_SG_DECODE=1 MOA_WGSL_SG_FLAT=late MOA_WGSL_FUSED_MERGE=1 MOA_WGSL_SG_FLAT_WORDS=1 MOA_WGSL_SG_FLAT_CMAX=1"
QP=MOA_WGSL_SG_FLAT_QPACK=1; N1=MOA_WGSL_SG_FLAT_NL=1; N2=MOA_WGSL_SG_FLAT_NL=2
MB=MOA_WGSL_SG_FLAT_MERGE_BATCH; U=MOA_WGSL_FUSED_MERGE=0
declare -A VE=([def]="" [Q]="$QP" [Qb4]="$QP $MB=4" [Qb2]="$QP $MB=2" [Qb1]="$QP $MB=1"
  [QN2]="$QP $N2" [QN2b4]="$QP $N2 $MB=4" [QN2b2]="$QP $N2 $MB=2"
  [QN1]="$QP $N1" [QN1b4]="$QP $N1 $MB=4" [QN1b2]="$QP $N1 $MB=2" [QN1b1]="$QP $N1 $MB=1"
  [defu]="$U" [Qu]="$QP $U" [QN2u]="$QP $N2 $U" [QN1u]="$QP $N1 $U" [defb2]="$MB=2")
FORMS=${FORMS:-"def Q Qb4 Qb2 Qb1 QN2 QN2b4 QN2b2 QN1 QN1b4 QN1b2 QN1b1 defu Qu QN2u QN1u defb2"}
PREF=${PREF:-"Q Qb4 Qb2 Qb1 QN2 QN2b4 QN2b2 QN1 QN1b4 QN1b2 QN1b1 Qu QN2u QN1u"}
declare -A RG
for n in $FORMS; do
  r=$(env $F ${VE[$n]} timeout 20 $B/wdb regs $P - 6 2>&1 | grep -m1 -E "^regs layer [0-9]|error")
  echo "$n $r" >> "$R/regs.txt"; el "regs $n: $(echo "$r" | grep -o -E "Register_Count=[0-9]+|error.*" | head -1)"
  RG[$n]=$(echo "$r" | grep -o -E "Register_Count=[0-9]+" | head -1 | cut -d= -f2)
done
X=${X:-}; XRES=396
if [ -z "$X" ]; then for n in $PREF; do [ -n "${RG[$n]}" ] && [ "${RG[$n]}" -le 80 ] && { X=$n; break; }; done; fi
[ -z "$X" ] && { X=Q; XRES=264; }
el "X = $X (${VE[$X]}; registers ${RG[$X]:-?}; told $XRES resident)"; echo "X=$X ${VE[$X]} RESIDENT=$XRES" > "$R/choice.txt"
for n in def $X; do mkdir -p "$R/ir/$n"; env $F ${VE[$n]} MOA_WGSL_REGS_IR="$R/ir/$n" timeout 15 $B/wdb regs $P - 6 > "$R/ir/regs-$n.txt" 2>&1
  el "ir $n rc=$?: $(grep -o -E 'ir[0-9.]+=[^,]*' "$R/ir/regs-$n.txt" | head -3 | tr '\n' ' ')"; done
left 100 && { env $F ${VE[$X]} timeout 20 $B/wdb check plans/fixture-gqa.toml plans/fixture-mha.toml > "$R/check-$X.txt" 2>&1
  el "check $X rc=$?: $(grep -E 'max .error|check pass|check FAIL' "$R/check-$X.txt" | grep -o -E 'max .error. [0-9.e-]+|check [a-zA-Z]+' | tr '\n' ' ')"; }
save
export MOA_WGPU_COOP_ATTN=0
A=${A:-"--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"}
envof() { case $1 in def*) echo "MOA_WGPU_COOP_ATTN=0";; X*) echo "${VE[$X]} MOA_WGPU_DECODE_RESIDENT=$XRES";; esac; }
step() { local name=$1 par=$2 cap=$3; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name)" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe $A --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|wgpu_products_engine: " "$R/$name.txt" | cut -c1-200 | head -2; save; }
RUNS=${RUNS:-"def1:24:32 X1:24:24 X2:0:14 def2:0:14 def3:0:14 X3:0:14"}
for r in $RUNS; do IFS=: read -r n p c <<< "$r"; step "$n" "$p" "$c"; done
bench() { local name=$1 cap=$2; shift 2; left $(( cap + 2 )) || { el "skip bench $name"; return; }
  env $F "$@" MOA_WGSL_KV_RANDOM=1 MOA_WGSL_PARTS=decode timeout $cap $B/wdb plan $P ${BARGS:-6 16 4160} > "$R/bench-$name.txt" 2>&1
  el "bench $name rc=$?"; grep -E "^layer 6" "$R/bench-$name.txt" | sed -e 's/^layer 6 B=16 prompt 4160 (N=4160, 26 MB KV, //' | cut -c1-150; save; }
bench tailA 14 MOA_WGSL_CHUNKS=auto,256,384,768 MOA_WGSL_ITEMS=all,all1
bench tailB 14 $U MOA_WGSL_ITEMS=all,sorted,long:1,long:8,long:48,long:132,long:198,short:120
bench X 10 ${VE[$X]} MOA_WGSL_CHUNKS=auto@$XRES MOA_WGSL_ITEMS=all,long:1
bench def 10
MORE=${MORE-"X4:0:14 def4:0:14"}
for r in $MORE; do IFS=: read -r n p c <<< "$r"; step "$n" "$p" "$c"; done
summary() { printf "%-5s %6s %7s %5s %7s %6s %6s %5s %5s %5s %5s %s\n" run tok/s ms/st disp dev_us attn merge qkv out gu down parity
  for r in $RUNS $MORE; do IFS=: read -r name _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
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
