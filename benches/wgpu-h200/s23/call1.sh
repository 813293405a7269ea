#!/bin/bash
# (Ran with the binaries of this branch at eeada34, where MOA_WGPU_COOP_GATE_UP_KPARTS existed;
# it was deleted after this call and call 2: options::REMOVED.)
# Session 23, s23-gateup, call 1 (one H200 through Vulkan): the matrix-unit gate/up
# product's K over 12 and 9 subgroups (MOA_WGPU_COOP_GATE_UP_KPARTS) and the gate/up
# product on subgroups at 8 rows (MOA_WGPU_COOP_DECODE=0, never measured at 8 rows)
# against the default (K over 4 subgroups), one process a run.
#   END=175 bash .dev-s23-gateup/call1.sh   (run tool timeout_s ~190; carry
#   [".dev-s23-gateup"], filled by benches/wgpu-h200/s23/pack.sh)
# SmolLM2 shape, random weights, 16 x 4096, moa-50, 64 greedy tokens, --profile 5,
# MOA_WGPU_COOP_ATTN=0; w0 (untimed warm-up: a fresh machine's shader compiles), the
# three forms' parity runs (--parity 24), tests/model_gpu.rs's
# matrix_unit_gate_up_k_parts_match_the_cpu_reference (K in 4/6/9/12 parts against the
# CPU), then d k12 k12 d d sg sg d d k9 k9 d. No run starts past END seconds.
# PREDICTIONS (before the call; default gate/up 7.55-7.9 us a layer, step 1.48-1.50 ms):
#   k12: gate/up 6.3-7.0 us (a warp's 18 B fragments and 2 chains of 9 multiply-adds
#        become 6 and 2 chains of 3; a staging lane's 18 x loads 9; 12 warps an SM
#        instead of 4 over the same 96 workgroups; the epilogue sums 12 parts, +0.1);
#        device step -20..-40 us; other kinds unchanged.
#   k9:  gate/up 6.6-7.2 us (8 B fragments a warp, chains of 4, the same staging as k12).
#   sg:  gate/up 8.0-8.8 us (the subgroup SwiGLU product at 8 rows: a loss of 0.3-1.1;
#        16 rows took 9.2 against the matrix units' 8.2 in session 13).
#   Parity: max |logit err| ~0.05 (the default's 0.0517), argmax 3/3 for all three; the
#   test passes with "gate/up's K in N parts" in the products' description on the H200.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s23gu; rm -rf "$R"; mkdir -p "$R"
END=${END:-175}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s23-gateup-call1.tgz" -C "$R" .; }
left() { [ $(( $(date +%s) - s )) -lt "$END" ]; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
gunzip -c "$D/model_gpu.gz" > /tmp/model_gpu && chmod +x /tmp/model_gpu
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export MOA_WGPU_COOP_ATTN=0
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --new 64 --profile 5 --plan $P --prompt 4096"
# name:env:parity:cap (env: d = default, kN = MOA_WGPU_COOP_GATE_UP_KPARTS=N, sg =
# MOA_WGPU_COOP_DECODE=0)
one() {
  IFS=: read -r n e par cap <<< "$1"
  left || { el "$n skipped (END)"; return; }
  case $e in
    d) env=() ;;
    sg) env=(MOA_WGPU_COOP_DECODE=0) ;;
    k*) env=(MOA_WGPU_COOP_GATE_UP_KPARTS=${e#k}) ;;
  esac
  env "${env[@]}" timeout "$cap" /tmp/wpe $A --parity "$par" > "$R/$n.txt" 2>&1; el "$n rc=$?"; save
}
el start
for r in w0:d:0:45 k12p:k12:24:25 k9p:k9:24:25 sgp:sg:24:25; do one "$r"; done
if left; then
  timeout 60 /tmp/model_gpu matrix_unit_gate_up --nocapture > "$R/test.txt" 2>&1; el "test rc=$?"; save
fi
for r in d1:d:0:15 k12a:k12:0:15 k12b:k12:0:15 d2:d:0:15 d3:d:0:15 sga:sg:0:15 sgb:sg:0:15 \
  d4:d:0:15 d5:d:0:15 k9a:k9:0:15 k9b:k9:0:15 d6:d:0:15; do one "$r"; done
for n in k12p k9p sgp d1 k12a k12b d2 d3 sga sgb d4 d5 k9a k9b d6; do t=$R/$n.txt
  [ -f "$t" ] || continue
  tok=$(grep -o -E "= [0-9]+ tok/s" "$t" | tail -1)
  us() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us device" | head -1; }
  per() { grep -m1 -E "^ *$1: " "$t" | grep -o -E "[0-9.]+ us/dispatch" | cut -d' ' -f1; }
  echo "$n $tok step=$(us step) attn=$(per attention) merge=$(per merge) qkv=$(per qkv) out=$(per out) gu=$(per gate_up) down=$(per down) probe=$(per probe) $(grep -o -E 'max .logit err. [0-9.]+|argmax equal [0-9/]+' "$t" | tr '\n' ' ')"
done | tee "$R/summary.txt"
for n in k12p k9p sgp; do echo "$n: $(grep -h -o -E 'decode products: [^;]*;[^;]*' "$R/$n.txt" | head -1)"; done | tee -a "$R/summary.txt"
grep -E "K in|test result|panicked|FAILED" "$R/test.txt" | tee -a "$R/summary.txt"
save
