#!/bin/bash
# Session 35, lead call 5 (one H200 through Vulkan): merged main (s35-prod's MOA_WGPU_SG_EARLY default;
# s35-l2's and s35-down2's forms deleted; s35-user's and s35-wide's changes) — s35-prod's final
# binary never ran on the H200.
#   BIN=/tmp/lead35-bin bash benches/wgpu-h200/s35/lead/pack.sh /work/main/.dev-lead35e
#   bash .dev-lead35e/call5.sh   (carry [".dev-lead35e"]; run tool timeout_s 220)
# 1. tests/model_gpu.rs, the whole file. PREDICTED: all pass (31 passed + s35-prod's new cases, 1 ignored), 45-80 s.
# 2. Decode, SmolLM2 shape, 16 x 4096, moa-50, 256 new tokens: merged defaults (M) against session
#    34's form (A = MOA_WGPU_SG_EARLY=0), M1 A1 at --profile 5 --parity 24, then A2 M2 M3 A3 at --profile 1.
#    PREDICTED (s35-prod call 1: +0.9..+1.2%): M 11.45-11.70k tok/s, A 11.35-11.55k, every M above
#    the A of its pair; out 4.0-4.1 (A 4.1-4.2), down 5.9-6.0 (A 6.0-6.1); parity 0.0534, argmax 3/3 both.
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s35lead5; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s35-lead5.tgz" -C "$R" .; cp "$R/times.txt" "${OUT:-/tmp}/" 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
mkdir -p /work/main/target/tmp
gunzip -c "$D/model_gpu.gz" > /tmp/model_gpu && chmod +x /tmp/model_gpu
gunzip -c "$D/wpe.gz" > /tmp/wpe && chmod +x /tmp/wpe
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1
el start
timeout 100 /tmp/model_gpu --test-threads 12 > "$R/model_gpu.txt" 2>&1; el "model_gpu rc=$?"
grep -E "FAILED|test result|panicked" "$R/model_gpu.txt" | cut -c1-240 | tee -a "$R/times.txt"; save
P=plans/smollm2-135m-moa-50.toml
export MOA_WGPU_COOP_ATTN=0
A_ENV="MOA_WGPU_SG_EARLY=0"
dec() { local name=$1 prof=$2 par=$3; shift 3
  env "$@" timeout 25 /tmp/wpe --like smollm2-135m --rows 16 --new 256 --profile $prof --plan $P --prompt 4096 --parity $par > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -o -E '[0-9]+ tok/s' $R/$name.txt | tail -1) $(grep -m1 -E '^ *head: ' $R/$name.txt | grep -o -E '[0-9.]+ us/dispatch') $(grep -o -E 'max .logit err. [^,]*, argmax equal [0-9/]+' $R/$name.txt)"; }
dec M1 5 24; dec A1 5 24 $A_ENV
dec A2 1 0 $A_ENV; dec M2 1 0; dec M3 1 0; dec A3 1 0 $A_ENV
save
for n in M1 A1; do echo "== $n"; grep -E "^ *(qkv|attention|out|gate_up|down|head|argmax|probe|step):" "$R/$n.txt" | head -12; done > "$R/profile.txt" 2>&1
cp "$R/profile.txt" "${OUT:-/tmp}/"; save
