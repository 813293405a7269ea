#!/bin/bash
# Session 39, lead call 3: the new defaults on the H200 — UNROLL 4 on subgroups of 32 (default_unroll)
# and 4-row sets for steps of at most 4 rows (few_rows_sets) — with HF transformers in the same call.
# 1. 1B 4 rows dense + upstream plan; 1B 1 row dense. PREDICTED: step 1.50-1.56 ms (call 2's variant
#    rows 4 unroll 4: 1.53), ~2.5k tok/s at 4 rows (1 829 in call 1); parity 3/3.
# 2. 8B 4 rows dense + plan. PREDICTED: step 7.6-7.7 ms, ~500 tok/s (336).
# 3. HF transformers (static cache + torch.compile decode, eager prefill) on the same shapes, random
#    bf16 weights, 4 rows x 4096 and 1 row: PREDICTED 1B 4-row decode 2-4k tok/s, 8B 500-700 tok/s.
# 4. SmolLM2 16 x 4096 moa-50, default against MOA_WGPU_SG_UNROLL=1 (PREDICTED within 0.5%: its
#    products are fitted or on matrix units).
# 5. tests/model_gpu.rs with what is left of 570 s (the GPU defaults in every <= 4-row parity test).
D=/work/main/.dev-lead39; ROOT=$PWD; R=/tmp/s39c3; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s39-c3.tgz" -C "$R" .; cp "$R/times.txt" "${OUT:-/tmp}/" 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
mkdir -p /work/main/target/tmp
for b in wpe model_gpu; do python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$D/$b.xz" /tmp/${b}3 && chmod +x /tmp/${b}3; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
el start
U=tests/fixtures/upstream-plans
summ() { grep -E "^==|parity|tok/s|ms/step|^ *(qkv|attention|out|gate_up|down|head|step):|Error|error|panicked" "$1" | cut -c1-200 | tee -a "$R/times.txt"; }
export MOA_WGPU_COOP_ATTN=0
timeout 80 /tmp/wpe3 --like llama-3.2-1b --rows 4 --prompt 4096 --new 64 --profile 5 --parity 24 \
  --plan dense --plan $U/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json > "$R/l1b-r4.txt" 2>&1; el "1b r4 rc=$?"; summ "$R/l1b-r4.txt"; save
timeout 40 /tmp/wpe3 --like llama-3.2-1b --rows 1 --prompt 4096 --new 64 --profile 5 --parity 0 --plan dense > "$R/l1b-r1.txt" 2>&1; el "1b r1 rc=$?"; summ "$R/l1b-r1.txt"; save
timeout 140 /tmp/wpe3 --like llama-3-8b --rows 4 --prompt 4096 --new 32 --profile 3 --parity 0 \
  --plan dense --plan $U/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json > "$R/l8b.txt" 2>&1; el "8b rc=$?"; summ "$R/l8b.txt"; save
unset MOA_WGPU_COOP_ATTN
timeout 130 python3 benches/peers/hf_decode.py --like llama-3.2-1b --prompt 4096 --batch 4,1 --new 32 --json "$R/hf-1b.jsonl" > "$R/hf-1b.txt" 2>&1; el "hf 1b rc=$?"; tail -4 "$R/hf-1b.txt" | cut -c1-250 | tee -a "$R/times.txt"; save
timeout 120 python3 benches/peers/hf_decode.py --like llama-3-8b --prompt 4096 --batch 4 --new 32 --json "$R/hf-8b.jsonl" > "$R/hf-8b.txt" 2>&1; el "hf 8b rc=$?"; tail -3 "$R/hf-8b.txt" | cut -c1-250 | tee -a "$R/times.txt"; save
P=plans/smollm2-135m-moa-50.toml
dec() { local name=$1; shift
  env MOA_WGPU_COOP_ATTN=0 "$@" timeout 30 /tmp/wpe3 --like smollm2-135m --rows 16 --new 256 --profile 1 --plan $P --prompt 4096 --parity 0 > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -E '^ *step: ' $R/$name.txt | head -1 | cut -c1-90)"; }
dec A1; dec B1 MOA_WGPU_SG_UNROLL=1
grep -m1 "^==" "$R/A1.txt" | cut -c1-900 >> "$R/times.txt"; save
left=$(( 570 - ($(date +%s) - s) )); [ $left -gt 20 ] || left=20
timeout $left /tmp/model_gpu3 --test-threads 12 > "$R/model_gpu.txt" 2>&1; el "model_gpu rc=$? (timeout $left)"
grep -E "FAILED|test result|panicked" "$R/model_gpu.txt" | cut -c1-240 | tee -a "$R/times.txt"; grep -c "\.\.\. ok" "$R/model_gpu.txt" | tee -a "$R/times.txt"; save
