#!/bin/bash
# Session 31, lead call 2: why the whole model_gpu (merged main, rayon pipeline builds) did
# not finish in 70 s on the H200 (session 29's binary: 29 passed in 43 s). Run 1: the
# defaults, each thread's kernel stack (/proc/PID/task/*/stack, wchan) and, where gdb is
# there, every thread's backtrace, taken at 60 s; run 2: RAYON_NUM_THREADS=128 (as many
# compiles at once as the old per-engine thread pools, 12 tests x 16 threads).
#   bash .dev-lead/call2.sh   (carry [".dev-lead"], run tool timeout_s 260)
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s30lead2; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/s30-lead2.tgz" -C "$R" .; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
gunzip -c "$D/model_gpu.gz" > /tmp/model_gpu && chmod +x /tmp/model_gpu
ldconfig -p | grep -q libvulkan.so.1 || { for f in "$D"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
export __GL_SHADER_DISK_CACHE=1 __GL_SHADER_DISK_CACHE_SKIP_CLEANUP=1 __GL_SHADER_DISK_CACHE_PATH=/tmp/nv XDG_CACHE_HOME=/tmp/nv
mkdir -p /tmp/nv
el "start; gdb: $(which gdb)"
/tmp/model_gpu --test-threads 12 > "$R/run1.txt" 2>&1 & P=$!
for i in $(seq 1 60); do sleep 1; kill -0 $P 2>/dev/null || break; done
if kill -0 $P 2>/dev/null; then
  el "run 1 still running at 60 s: threads $(ls /proc/$P/task | wc -l)"
  top -b -n 1 -H -p $P | head -40 > "$R/top.txt" 2>&1
  for t in /proc/$P/task/*; do echo "== $(basename $t) $(cat $t/comm) $(cat $t/wchan 2>/dev/null) $(awk '{print $3, $14, $15}' $t/stat)"; done > "$R/tasks.txt"
  command -v gdb > /dev/null && timeout 60 gdb -p $P -batch -ex "thread apply all bt 12" > "$R/gdb.txt" 2>&1
  save
fi
for i in $(seq 1 90); do kill -0 $P 2>/dev/null || break; sleep 1; done
kill -0 $P 2>/dev/null && { kill -9 $P; el "run 1 killed"; }
wait $P; el "run 1 rc=$?"; save
RAYON_NUM_THREADS=128 timeout 90 /tmp/model_gpu --test-threads 12 > "$R/run2.txt" 2>&1; el "run 2 (RAYON_NUM_THREADS=128) rc=$?"
for f in run1 run2; do echo "== $f"; grep -E "FAILED|test result|panicked" "$R/$f.txt" | cut -c1-240; done
cat "$R/times.txt"
save
