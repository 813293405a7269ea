#!/bin/bash
# Issue 9 (session 10), device calls A1 and A2 (then B): each keeps its carry's parts of the
# xz'd GGUF in /tmp/s10 and unpacks the `cuda`-feature moa (with `moa profile --under-plan`)
# where the carry has it. Three calls because each call's carry plus the lead checkout's
# tracked tree (15.6 MB) must stay under 64 MiB, and the binary (9.7 MB) and the GGUF
# (90.4 MB xz'd) do not fit two; the machine stays warm about 30 s between calls.
# Carry folder as $1 (made by pack.sh).
set -u
D=$1; S=/tmp/s10; mkdir -p $S
t0=$(date +%s)
cp "$D"/gguf.xz.part* $S/
if [ -f "$D/moa.xz" ]; then
    python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$D/moa.xz" $S/moa
    chmod +x $S/moa
    nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader
fi
echo "[$(($(date +%s) - t0)) s] kept"; ls -la $S
