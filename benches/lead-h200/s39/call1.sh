#!/bin/bash
# Session 39, lead call 1 (one H200). Binaries: .dev-lead36 (built at 2d36b98 = main's code at 758b848).
# 1. The wgpu engine on the Llama-3.2-1B shape, 4 rows x 4096, dense and the upstream plan, --profile 5.
#    Last measured in session 7 (463 / 566 decode tok/s, 8-10% of the memory roofline, 84-104 us a
#    dispatch); every decode product change since was tuned on SmolLM2. PREDICTED: parity 3/3 both;
#    decode 1.5-3k tok/s (15-30% of the roofline: 2.47 GB weights + KV per step).
# 2. The Llama-3-8B shape through wgpu (never run): 1 and 4 rows x 4096, dense and the upstream
#    plan, --parity 0 (the CPU reference of 8B is minutes). PREDICTED: loads (16 GB f16, 2 GiB
#    bindings), decode 1 row 120-220 tok/s (16 GB a step: 3.8 ms at 4.2 TB/s = 263 tok/s).
# 3. tests/model_gpu.rs, the whole file, with what is left of 570 s (cut at 100 s last session).
D=/work/main/.dev-lead36; ROOT=$PWD; R=/tmp/s39lead; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s39-lead.tgz" -C "$R" .; cp "$R/times.txt" "${OUT:-/tmp}/" 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
mkdir -p /work/main/target/tmp
for b in model_gpu wpe; do python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$D/$b.xz" /tmp/$b && chmod +x /tmp/$b; done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv > "$R/gpu.txt" 2>&1
free -g >> "$R/gpu.txt"; nproc >> "$R/gpu.txt"
el start
U=tests/fixtures/upstream-plans
summ() { grep -E "^==|random weights|parity|tok/s|step|dispatch|KV|error|Error|panicked" "$1" | cut -c1-300 | tee -a "$R/times.txt"; }
timeout 110 /tmp/wpe --like llama-3.2-1b --rows 4 --prompt 4096 --new 64 --profile 5 --parity 24 \
  --plan dense --plan $U/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json > "$R/l1b.txt" 2>&1; el "1b rc=$?"; summ "$R/l1b.txt"; save
timeout 250 /tmp/wpe --like llama-3-8b --rows 4 --prompt 4096 --new 32 --profile 3 --parity 0 \
  --plan dense --plan $U/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json > "$R/l8b.txt" 2>&1; el "8b rc=$?"; summ "$R/l8b.txt"; save
left=$(( 570 - ($(date +%s) - s) )); [ $left -gt 30 ] || left=30
timeout $left /tmp/model_gpu --test-threads 12 > "$R/model_gpu.txt" 2>&1; el "model_gpu rc=$? (timeout $left)"
grep -E "FAILED|test result|panicked" "$R/model_gpu.txt" | cut -c1-240 | tee -a "$R/times.txt"; grep -c "\.\.\. ok" "$R/model_gpu.txt" | tee -a "$R/times.txt"; save
