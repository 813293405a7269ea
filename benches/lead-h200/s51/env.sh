# Sourced by session 51's (and 55's) device scripts: `. "$(dirname "$0")/env.sh" NAME BINARY:XZ...` in a carry
# folder (.dev-sNN, a copy of the scripts with the binaries; SESSION=sNN, default s51, names what follows). Sets D
# (the script's folder), R (/tmp/$SESSION-NAME, emptied), el (a timed line into $R/times.txt), save
# ($OUT/$SESSION-NAME.tgz and NAME-times.txt); unpacks each
# BINARY from D/XZ to /tmp/BINARY; installs the Vulkan loader debs of D/gl where missing; sets the NVIDIA
# ICD's and CUDA's environment; records the GPU; defines dec (a SmolLM2 decode run of /tmp/wpe).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; NAME=$1; shift; SESSION=${SESSION:-s51}; R=/tmp/$SESSION-$NAME; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/$SESSION-$NAME.tgz" -C "$R" .; cp "$R/times.txt" "${OUT:-/tmp}/$NAME-times.txt" 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
mkdir -p /work/main/target/tmp
for b in "$@"; do
  python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$D/${b#*:}" "/tmp/${b%%:*}" && chmod +x "/tmp/${b%%:*}"
done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/nv
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$R/gpu.txt" 2>&1; cat "$R/gpu.txt" >> "$R/times.txt"
el start
# One SmolLM2-shape decode run of /tmp/wpe (16 rows x 4096, moa-50, 256 greedy tokens, MOA_WGPU_COOP_ATTN=0):
# dec NAME PROFILE_REPEATS PARITY_TOKENS [VAR=VALUE ...]; its log in $R/NAME.txt, its step rows in times.txt.
# WPE (default /tmp/wpe) picks the binary.
dec() { local name=$1 prof=$2 par=$3; shift 3
  env MOA_WGPU_COOP_ATTN=0 "$@" timeout 45 ${WPE:-/tmp/wpe} --like smollm2-135m --rows 16 --new 256 --profile $prof \
    --plan plans/smollm2-135m-moa-50.toml --prompt 4096 --parity $par > "$R/$name.txt" 2>&1
  el "$name rc=$? $(grep -E '^decode:' $R/$name.txt | head -2 | tr '\n' ' ' | cut -c1-220) $(grep -o -E 'max .logit err. [^,]*, argmax equal [0-9/]+' $R/$name.txt)"
  grep -E "^ *(attention|step|probe|step_submits|step_cbs|step_cbs_nofeed|step_passes):" "$R/$name.txt" | tee -a "$R/times.txt"; save; }
