#!/bin/bash
# Issue 9 (session 11), device calls A1 and A2 (then B): each keeps its carry's part of the
# GGUF in /tmp/s11 and unpacks the `cuda`-feature moa where the carry has it (three
# calls: the binary and the GGUF do not fit two carries beside the 18.6 MB checkout).
# Carry folder as $1 (made by pack.sh).
set -u
D=$1; S=/tmp/s11; mkdir -p $S
t0=$(date +%s)
cp "$D"/gguf.part* $S/
if [ -f "$D/moa.xz" ]; then
    python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$D/moa.xz" $S/moa
    chmod +x $S/moa
    nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader
fi
echo "[$(($(date +%s) - t0)) s] kept"; ls -la $S
