#!/bin/bash
# Session 27, s27-gemm, call 3 (one H200 through Vulkan): the new default end to end.
# Call 2 found the products bound by their loads, naga's runtime checks (loop counters)
# keeping xr / wr in local memory, and 128 x 128 tiles of 8 subgroups unchecked at
# 38-54 TFLOP/s; coop_linear.wgsl is now that (the naive and 128 x 64 kernels and
# MOA_WGPU_COOP_GEMM deleted), built unchecked under MOA_WGPU_UNCHECKED (default 1).
#   END=110 bash .dev-s27-gemm/call3.sh   (run tool timeout_s 170; carry [".dev-s27-gemm"],
#   filled by benches/wgpu-h200/s27/gemm/pack.sh with OLD = call 1's wgpu_products_engine)
# 1. wp --gemm 32768 10: the default (unchecked) checked against the CPU, then against
#    the checked build and the diagnostics (noload, nomma, nowrite), default v v default.
# 2. HF sdpa eager prefill 16 x 4096 (warm median, hf_prefill.py).
# 3. wpe SmolLM2 shape, random weights, 16 x 4096, moa-50, --new 8, --profile-prefill:
#    old(parity 72) new(parity 72) new old; old = call 1's binary with
#    MOA_WGPU_COOP_GEMM=naive (main's kernel, checked), new = this branch's default.
# PREDICTIONS: gemm default 38-54 TFLOP/s as in call 2 (qkv 41, out 38, gate/up 44.6,
#   down 54); checked 21-25; noload 1.2-1.5x the default (the loads still bind), nomma
#   ~1.3-2x faster, nowrite ~1.1-1.25x. Prefill pass (8 x 4096): qkv 128 -> 27-32 ms,
#   out 75 -> 18-24 (f16 x), mlp 551 -> 130-150 (gate/up 2.6 + down 1.07 ms x 30 = 110,
#   plus rmsnorm + swiglu ~20), attention 384 unchanged: step 1138 -> 560-600 ms;
#   end-to-end 28.7k -> 52-58k tok/s. Parity 0.0506, 3/3 as before. HF sdpa ~615k.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s27gemm3; rm -rf "$R"; mkdir -p "$R"
END=${END:-110}
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s27-gemm-call3.tgz" -C "$R" .; }
left() { [ $(( $(date +%s) - s )) -lt "$END" ]; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/wp.gz" > /tmp/wp && chmod +x /tmp/wp
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
gunzip -c "$D/wpe_old.gz" > /tmp/wpe_old && chmod +x /tmp/wpe_old
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
el start
timeout 40 /tmp/wp --gemm 32768 10 > "$R/gemm.txt" 2>&1; el "gemm rc=$?"; save
if left; then
  timeout 50 python3 "$D/hf_prefill.py" --like smollm2-135m --batch 16 --prompt 4096 \
    --attn sdpa --warm 2 --reps 5 --json "$R/hf.jsonl" > "$R/hf.txt" 2>&1
  el "hf rc=$?"; save
fi
P=plans/smollm2-135m-moa-50.toml
A="--like smollm2-135m --rows 16 --prompt 4096 --new 8 --plan $P --profile-prefill"
one() {
  IFS=: read -r n bin par cap <<< "$1"
  left || { el "$n skipped (END)"; return; }
  MOA_WGPU_COOP_GEMM=naive timeout "$cap" "$bin" $A --parity "$par" > "$R/$n.txt" 2>&1
  el "$n rc=$?"; save
}
for r in old1:/tmp/wpe_old:72:40 new1:/tmp/wpe:72:40 new2:/tmp/wpe:0:30 old2:/tmp/wpe_old:0:30; do one "$r"; done
{
  grep -E "^check|^gemm|^chosen" "$R/gemm.txt"
  grep -E "^hf prefill|out of memory|Error" "$R/hf.txt"
  for n in old1 new1 new2 old2; do t=$R/$n.txt; [ -f "$t" ] || continue
    echo "$n: $(grep -o -E 'prefill: [^;]*' "$t" | head -1) | $(grep -o -E 'max .logit err. [0-9.e-]+|argmax equal [0-9/]+' "$t" | tr '\n' ' ')"
    grep -A9 "prefill pass 1 per dispatch kind" "$t" | sed "s/^/  $n /"
    grep -h -o -E "cooperative matrix 16x16x16[^;]*|warning[^\n]*" "$t" | head -2
  done
} > "$R/summary.txt" 2>&1
cat "$R/summary.txt"
save
