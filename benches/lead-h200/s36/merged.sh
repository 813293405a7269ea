#!/bin/bash
# Run in session 38 (04:08 UTC; benches/lead-h200/s38/call1). Was NOT RUN in session 36: the device tool lent no machine at 21:50 UTC ("no new device machine is lent at present"); kept for the next session.
# NOT RUN in session 37 either (loans paused all session). Main has since gained s37-dedup's
# record.rs refactor (its matrix-unit branches changed mechanically, never run on matrix units:
# item 1 checks them) and per-row sampling streams (host only); build the binaries from the then-main.
# NOT RUN in session 38 either (loans paused). Main has since gained s38-dedup's host refactors of the
# CUDA engine (layouts, kv_bytes, split_logits, the prompt-over-pass check: changed mechanically, never
# run on the device), so item 2 now runs the WHOLE tests/cuda_engine.rs (PREDICTED: all pass), and
# the lead's split of codegen/cuda.rs and codegen/wgsl.rs into folders (a pure move: snapshots equal).
# Session 36, lead call (one H200): merged main = s36-wide (f32 scalar decode of wide groups as
# sub-groups; moa bench --kv-heads), s36-mqa (decode letter A, opt-in), s36-head (the LM head in
# workgroups of 16 subgroups, MOA_WGPU_COOP_HEAD_WIDE=auto, the default) and s36-user (round 22;
# tests/model_gpu.rs's shared prefill-then-decode helper). The wide head never ran tests/model_gpu.rs
# on the H200; the merged codegen (s36-wide's scalar sub-groups with s36-mqa's block split) never
# ran the CUDA engine.
#   BIN=/tmp/lead36-bin bash benches/lead-h200/s36/pack.sh /work/main/.dev-lead36
#   bash .dev-lead36/merged.sh   (carry [".dev-lead36"]; run tool timeout_s 350)
# 1. tests/model_gpu.rs on Vulkan, the whole file. PREDICTED: all pass (31 passed, 1 ignored), 45-80 s.
# 2. tests/cuda_engine.rs (wide groups, MHA split segments, clusters/PDL, greedy) and cuda_check on
#    fixture-gqa, wide-gqa16 and s36-wide's wide-gqa64-hd256 in f32 and bf16. PREDICTED: all pass,
#    errors as s36-wide's (f32 1.8e-7 / 4.0e-7; bf16 2.061e-3 / 1.955e-3).
# 3. Decode, SmolLM2 shape, 16 x 4096, moa-50, 256 new tokens: merged defaults (W, the wide head)
#    against H = MOA_WGPU_COOP_HEAD_WIDE=0 (session 35's head): W1 H1 at --profile 5 --parity 24,
#    then H2 W2 W3 H3 at --profile 1. PREDICTED (s36-head: +0.75..+0.94%): W 11.45-11.65k tok/s,
#    H 11.35-11.55k, every W above the H of its pair; head 25-27 us (H 30-32); parity 0.0534, 3/3.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s36lead; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s36-lead.tgz" -C "$R" .; cp "$R/times.txt" "${OUT:-/tmp}/" 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
mkdir -p /work/main/target/tmp
for b in model_gpu ce wpe cuda_check; do python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$D/$b.xz" /tmp/$b && chmod +x /tmp/$b; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/nv
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
el start
timeout 100 /tmp/model_gpu --test-threads 12 > "$R/model_gpu.txt" 2>&1; el "model_gpu rc=$?"
grep -E "FAILED|test result|panicked" "$R/model_gpu.txt" | cut -c1-240 | tee -a "$R/times.txt"; save
timeout 150 /tmp/ce --test-threads 1 > "$R/engine-tests.txt" 2>&1; el "engine tests rc=$?"
grep -E "^test |test result" "$R/engine-tests.txt" | tee -a "$R/times.txt"; save
timeout 90 /tmp/cuda_check plans/fixture-gqa.toml benches/lead-h200/s34/plans/wide-gqa16.toml \
  benches/decode-h200/s36/wide/plans/wide-gqa64-hd256.toml --dtypes f32,bf16 > "$R/cuda_check.txt" 2>&1; el "cuda_check rc=$?"
tail -12 "$R/cuda_check.txt" | cut -c1-240 | tee -a "$R/times.txt"; save
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
H_ENV="MOA_WGPU_COOP_HEAD_WIDE=0"
dec() { local name=$1 prof=$2 par=$3; shift 3
  env "$@" timeout 25 /tmp/wpe --like smollm2-135m --rows 16 --new 256 --profile $prof --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -m1 -E '^ *head: ' $R/$name.txt | grep -o -E '[0-9.]+ us/dispatch') $(grep -o -E 'max .logit err. [^,]*, argmax equal [0-9/]+' $R/$name.txt)"; }
dec W1 5 24; dec H1 5 24 $H_ENV
dec H2 1 0 $H_ENV; dec W2 1 0; dec W3 1 0; dec H3 1 0 $H_ENV
save
for n in W1 H1; do echo "== $n"; grep -E "^ *(qkv|attention|out|gate_up|down|head|argmax|probe|step):" "$R/$n.txt" | head -12; done > "$R/profile.txt" 2>&1
cp "$R/profile.txt" "${OUT:-/tmp}/"; save
