# Sourced by call1.sh and call2.sh (session 40): `. "$(dirname "$0")/env.sh" NAME BINARY...` with the
# carry folder .dev-lead40 in the repository root. Sets D (carry), R (/tmp/s40-NAME, emptied), el (a timed
# line into $R/times.txt), save ($OUT/s40-NAME.tgz), unpacks each BINARY's .xz to /tmp/BINARY (once a
# machine), installs the Vulkan loader debs where missing and the NVIDIA ICD's environment.
D=$PWD/.dev-lead40; ROOT=$PWD; NAME=$1; shift; R=/tmp/s40-$NAME; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "${OUT:-/tmp}/s40-$NAME.tgz" -C "$R" .; cp "$R/times.txt" "${OUT:-/tmp}/" 2>/dev/null; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
for b in "$@"; do
  [ -x /tmp/$b ] || { python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$D/$b.xz" /tmp/$b && chmod +x /tmp/$b; }
done
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
export MOA_WGPU_COOP_ATTN=0
U=tests/fixtures/upstream-plans
el start
