#!/bin/bash
# SUPERSEDED by benches/lead-h200/s40/call1.sh and call2.sh (session 40), which also A/B the span switch.
# NOT RUN in session 39: the session's device time was spent by calls 1-3 (benches/RESULTS.md, "Session 39, lead call 3").
# To run it: cargo build --release --example wgpu_products_engine; mkdir -p .dev-lead39 && bash benches/gl-debs.sh .dev-lead39/gl
#   (the Vulkan loader debs, as benches/lead-h200/s36/pack.sh gathers them); xz -9 -c target/release/examples/wgpu_products_engine > .dev-lead39/wpe.xz;
#   cp benches/lead-h200/s39/call4.sh .dev-lead39/; then the device tool: bash .dev-lead39/call4.sh (carry [".dev-lead39"], timeout_s 600).
# Session 39, lead call 4: why the upstream plans' decode attention is no faster than dense on the
# 1B and 8B shapes at 4 rows x 4096 (call 1: 1B 22.4 against 19.1 us, 8B 39.7 against 36.3, though the
# plans read 0.65 and 0.62 of dense's KV bytes). A chunk sweep (a new request per chunk length, its
# step profiled; 0 = the work-list model's choice), dense and plan.
# PREDICTED: some fixed chunk takes the plan's attention below dense's (the model, fitted on SmolLM2 at
# 16 rows, picks chunks too long for few rows); if no chunk does, the kernel's per-item cost is the cause.
# Also the Llama-3.2-3B shape (new in --like), dense and its upstream plan, 4 rows x 4096: PREDICTED loads,
# generates, step 3.2-3.8 ms (6.4 GB of f16 weights at ~2.5 TB/s + attention).
D=/work/main/.dev-lead39; ROOT=$PWD; R=/tmp/s39c4; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s39-c4.tgz" -C "$R" .; cp "$R/times.txt" "${OUT:-/tmp}/" 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$D/wpe.xz" /tmp/wpe4 && chmod +x /tmp/wpe4
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
export MOA_WGPU_COOP_ATTN=0
el start
# XFIRST (x loads of the unrolled trips issued with their weight loads, 4-row sets), A B A B on the 1B
# shape at 4 rows: PREDICTED gate_up 31 -> 26-29 us, the step 1.53 -> 1.40-1.50 ms, or no change.
xf() { local name=$1; shift
  env "$@" timeout 40 /tmp/wpe4 --like llama-3.2-1b --rows 4 --prompt 4096 --new 64 --profile 5 --parity 0 --plan dense > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -E '^ *(gate_up|down|head|step): ' $R/$name.txt | sed -E 's/ +/ /g' | cut -d'(' -f2 | cut -c1-20 | tr '\n' ' ')"; }
xf XA1; xf XB1 MOA_WGPU_SG_XFIRST=1; xf XA2; xf XB2 MOA_WGPU_SG_XFIRST=1
grep -m1 "^==" "$R/XB1.txt" | cut -c1-700 >> "$R/times.txt"; save
U=tests/fixtures/upstream-plans
summ() { grep -E "^==|chunk .* decode step|^ *(attention|step):|Error|error|panicked" "$1" | cut -c1-160 | tee -a "$R/times.txt"; }
# SmolLM2 at 1 row (the default model's chat case): the 4-row sets (default) against MOA_WGPU_SG_ROWS=8
# (8-row sets only, as before session 39), A B A B. PREDICTED: equal or the 4-row sets faster (1B at 1 row:
# 1.50 against 1.62-1.74 ms), never slower by more than 1%.
sm() { local name=$1; shift
  env "$@" timeout 30 /tmp/wpe4 --like smollm2-135m --rows 1 --prompt 1024 --new 256 --profile 5 --parity 0 --plan dense > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -E '^ *step: ' $R/$name.txt | head -1 | cut -c1-90)"; }
sm SA1; sm SB1 MOA_WGPU_SG_ROWS=8; sm SA2; sm SB2 MOA_WGPU_SG_ROWS=8; save
# The per-rule probe: plans whose every span is N (dense's bytes) with one rule and with two rules
# alternating inside each GQA group (per-head span lookups in the item's start). PREDICTED, if the
# in-shader rule lookups (function-scope arrays: local memory) are the plan's extra cost: 1 rule = dense,
# 2 rules 2-4 us a layer slower; if both equal dense, the cost lies in the plan's shorter chunks/merges.
S=benches/lead-h200/s39/plans
timeout 80 /tmp/wpe4 --like llama-3.2-1b --rows 4 --prompt 4096 --new 32 --profile 5 --parity 24 --plan dense \
  --plan $S/l1b-full-1rule.toml --plan $S/l1b-full-2rules.toml --plan $U/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json > "$R/l1b-rules.txt" 2>&1
el "1b rules rc=$?"; grep -E "^==|parity|^ *(attention|step):" "$R/l1b-rules.txt" | cut -c1-120 | tee -a "$R/times.txt"; save
timeout 120 /tmp/wpe4 --like llama-3.2-1b --rows 4 --prompt 4096 --new 8 --profile 5 --parity 0 --chunks 0,64,128,256,512,1024,0 \
  --plan dense --plan $U/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json > "$R/l1b.txt" 2>&1; el "1b rc=$?"; summ "$R/l1b.txt"; save
timeout 90 /tmp/wpe4 --like llama-3.2-3b --rows 4 --prompt 4096 --new 32 --profile 3 --parity 0 \
  --plan dense --plan $U/meta-llama--Llama-3.2-3B-Instruct/moa_alpha_beta.json > "$R/l3b.txt" 2>&1; el "3b rc=$?"; grep -E "^==|tok/s|ms/step|^ *(qkv|attention|out|gate_up|down|head|step):" "$R/l3b.txt" | cut -c1-200 | tee -a "$R/times.txt"; save
timeout 220 /tmp/wpe4 --like llama-3-8b --rows 4 --prompt 4096 --new 8 --profile 3 --parity 0 --chunks 0,64,128,256,512,1024 \
  --plan dense --plan $U/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json > "$R/l8b.txt" 2>&1; el "8b rc=$?"; summ "$R/l8b.txt"; save
