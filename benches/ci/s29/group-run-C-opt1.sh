#!/bin/bash
while pgrep -f s29-ci-ab.sh >/dev/null; do sleep 5; done
export XDG_RUNTIME_DIR=/tmp/xdg-s29-ci
source /work/cuda-env.sh
cd /tmp/s29-ci-opt1
echo "start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f "groupC wall %e user %U sys %S" nice /tmp/s29-ci-bins-C-opt1/group-b6d84cd5bc26a1bc 2>&1 | grep -v " ok$" | tail -60
echo "end $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
