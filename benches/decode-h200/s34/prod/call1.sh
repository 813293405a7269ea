#!/bin/bash
# Session 34, branch s34-prod, call 1: the decode's small products (qkv, out, down on subgroups;
# gate/up on matrix units) re-split, their registers, and the matrix-unit products without
# naga's runtime checks.
#   END=200 bash .dev-s34-prod/call1.sh   (run tool timeout_s 230; carry .dev-s34-prod, filled by
#   BIN=/tmp/s34-prod-bin bash benches/decode-h200/s34/prod/pack.sh)
# SmolLM2 shape, random weights, 16 rows x 4096, 256 new tokens, moa-50, MOA_WGPU_COOP_ATTN=0.
# regs: `wdb regs-products 8:1:8,4:1:8` (the subgroup products at 8 rows, KSPLIT 8 and 4) and
#   `wdb regs-coop 576 576` (gate/up, QKV, output on matrix units, with naga's index checks and
#   without).
# S  = one process, main's defaults, then --sg-variants "-:-:0;-:-:1;-:-:4;-:-:3;-:-:0" (DIAG 0,
#      1 no K loop, 4 weights-only K loop, 3 loads-only K loop, 0 again; each profile after an
#      untimed one): where qkv / out / down's time goes today.
# A  = main's defaults (gate/up on matrix units WITH naga's runtime checks, as since s11);
# U  = MOA_WGPU_COOP_DECODE_UNCHECKED=1 (the same gate/up kernel without the checks: index
#      clamps around every coopLoad and x load, loop counters);
# O  = U + MOA_WGPU_COOP_DECODE=1 (the output product on matrix units too, direct walk, unchecked);
# Q  = O + MOA_WGPU_COOP_QKV=1 (the QKV product on matrix units too, RoPE epilogue, unchecked);
# C  = MOA_WGPU_COOP_DECODE=1 MOA_WGPU_COOP_QKV=1 with the checks (s13's forms as main builds them).
# MODEL (written before the call):
#  Today (lead call 10, M1): qkv 6.05, out 4.34, gate_up 7.88, down 6.16 us a dispatch, step
#  1.411 ms, 11.10k tok/s; the empty dependent dispatch 2.1-2.2 us. The staged head lost 17 us
#  (48.3 -> 31.5) when built without naga's checks (s33-head): its clamps wrapped every fetch and
#  coopLoad (binary 28 160 -> 18 176 bytes). coop_matvec.wgsl (gate/up by default since s13, out
#  and qkv opt-in) is still built WITH them (matrix_pipeline), and s23's regs-coop read the
#  unchecked form (209 registers) that the engine never ran. Its B fragments are 18 coopLoads a
#  warp straight from storage, each clamped when checked.
#  PREDICTED: split (8 rows, the s22 form): DIAG 1 qkv 3.0-3.6, out 2.7-3.1, down 2.8-3.2 (or a
#  whole slow row, as s22's was); DIAG 4 qkv 4.1-4.6, out 2.9-3.3, down 4.0-4.5; DIAG 3 between 4
#  and 0: x's loads and the multiply-adds 1.0-1.9 us a product, as s22. regs: subgroup 80 / 80 /
#  112 (s22); coop gate/up checked 200-255, unchecked 200-215, no stack; the output product
#  (1 tile) 90-150.
#  U: gate/up 7.9 -> 6.3-7.4 (65% that it gains >= 0.5 us), tok/s +0.3..+1.5%, parity 0.0496
#  (checks change no in-bounds value), argmax 3/3.
#  O: out 4.3 -> 3.6-4.8 (45% that it beats the subgroup out by >= 0.2 us; 36 workgroups only).
#  Q: qkv 5.6-6.1 -> 4.8-6.8 (35% that it wins; 30 workgroups of 2 tiles only). Parity of O, Q
#  0.049-0.052 (f16 A fragments), 3/3. C: out 5.3-6.2, qkv 7.0-8.1 (s13's numbers, older main).
#  A/A noise of tok/s +-0.45% (s32); a form wins only if every run of it is above every A.
# RUNS: regs; S; A1 U1 O1 Q1 at --profile 5 --parity 24; C1 at --profile 5; then
#  A2 U2 O2 Q2 Q3 O3 U3 A3 at --profile 1 --parity 0.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=${RDIR:-/tmp/s34prod1}; B=${BDIR:-/tmp}; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s); END=${END:-200}
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
left() { [ $(( $(date +%s) - s )) -lt $(( END - $1 )) ]; }
save() { tar czf "${OUT:-/tmp}/s34-prod-${CALL:-call1}.tgz" -C "$R" . 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wpe.gz" > "$B/wpe" && chmod +x "$B/wpe" || { el "no wpe.gz"; exit 1; }
gunzip -c "$D/wdb.gz" > "$B/wdb" && chmod +x "$B/wdb" || el "no wdb.gz"
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
I=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $I ] && export VK_DRIVER_FILES=$I
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
el start; nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
{ timeout 20 $B/wdb regs-products 8:1:8,4:1:8; timeout 20 $B/wdb regs-coop 576 576; } > "$R/regs.txt" 2>&1; el "regs rc=$?"
grep -E "^regs " "$R/regs.txt" | cut -c1-230
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
W=(--like smollm2-135m --rows 16 --new 256 --plan $P --prompt 4096)
if left 40; then
  timeout 40 $B/wpe "${W[@]}" --profile 5 --parity 0 --sg-variants "-:-:0;-:-:1;-:-:4;-:-:3;-:-:0" > "$R/S.txt" 2>&1; el "S rc=$?"
  grep -E "^variant|^ *(qkv|out|gate_up|down|attention|probe|step):" "$R/S.txt" | cut -c1-120; save
fi
U="MOA_WGPU_COOP_DECODE_UNCHECKED=1"
envof() { case $1 in A*) echo "MOA_WGPU_COOP_DECODE_UNCHECKED=0";; U*) echo "$U";; O*) echo "$U MOA_WGPU_COOP_DECODE=1";;
  Q*) echo "$U MOA_WGPU_COOP_DECODE=1 MOA_WGPU_COOP_QKV=1";; C*) echo "MOA_WGPU_COOP_DECODE=1 MOA_WGPU_COOP_QKV=1";; esac; }
step() { local name=$1 par=$2 prof=$3 cap=$4; left $(( cap + 2 )) || { el "skip $name"; return; }
  echo "$name: $(envof $name) --profile $prof --parity $par" >> "$R/envs.txt"
  env $(envof $name) timeout $cap $B/wpe "${W[@]}" --profile $prof --parity $par > "$R/$name.txt" 2>&1; el "$name rc=$?"
  grep -h -E "max .logit err|panicked|Error|error" "$R/$name.txt" | cut -c1-200 | head -4
  grep -o -E "decode products: [^)]*\)[^;]*;[^;]*;[^;]*" "$R/$name.txt" | head -1 | cut -c1-300; save; }
RUNS=${RUNS:-"A1:24:5:30 U1:24:5:30 O1:24:5:30 Q1:24:5:30 C1:0:5:25 A2:0:1:20 U2:0:1:20 O2:0:1:20 Q2:0:1:20 Q3:0:1:20 O3:0:1:20 U3:0:1:20 A3:0:1:20"}
for r in $RUNS; do IFS=: read -r n p f c <<< "$r"; step "$n" "$p" "$f" "$c"; done
summary() { printf "%-4s %6s %6s %5s %7s %6s %5s %5s %5s %5s %6s %s\n" run tok/s ms/st disp dev_us attn qkv out gu down head parity
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; t=$R/$name.txt; [ -f "$t" ] || continue
    tok=$(grep -o -E "decode: [0-9]+ steps x [0-9]+ rows in [0-9.]+ s = [0-9]+ tok/s" "$t" | grep -o -E "[0-9]+ tok/s" | cut -d' ' -f1)
    ms=$(grep -o -E "dispatches/step, [0-9.]+ ms/step" "$t" | grep -o -E "[0-9.]+ ms" | cut -d' ' -f1)
    di=$(grep -o -E "[0-9]+ dispatches/step" "$t" | head -1 | cut -d' ' -f1)
    us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | cut -d' ' -f1; }
    per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
    par=$(grep -o -E "max .logit err. [0-9.]+" "$t" | grep -o -E "[0-9.]+$")
    arg=$(grep -o -E "argmax equal [0-9/]+" "$t" | cut -d' ' -f3)
    printf "%-4s %6s %6s %5s %7s %6s %5s %5s %5s %5s %6s %s\n" $name "${tok:--}" "${ms:--}" "${di:--}" "$(us step)" "$(per attention)" "$(per qkv)" "$(per out)" "$(per gate_up)" "$(per down)" "$(per head)" "${par:+$par,$arg}"
  done
  for r in $RUNS; do IFS=: read -r name _ _ _ <<< "$r"; echo "$name $(grep -h 'row 0 tokens' $R/$name.txt | cut -c1-60) | $(grep -o -E 'decode products: [^(]*\([^)]*\)[^;]*(;[^;]*){0,4}' $R/$name.txt | head -1 | cut -c1-400)"; done; }
summary > "$R/summary.txt"; cat "$R/summary.txt"; el done; save
