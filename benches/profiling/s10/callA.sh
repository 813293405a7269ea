#!/bin/bash
# Issue 9 (session 10), device call A of 2: unpacks the `cuda`-feature moa (with
# `moa profile --under-plan`) and keeps it with the GGUF's first part (xz-compressed: each
# call's carry is at most 64 MiB with the tracked tree) in /tmp/s10 for call B (the machine
# stays warm about 30 s). Carry folder as $1 (made by pack.sh).
set -u
D=$1; S=/tmp/s10; mkdir -p $S
t0=$(date +%s)
cp "$D/gguf.xz.part1" $S/
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$D/moa.xz" $S/moa
chmod +x $S/moa
echo "[$(($(date +%s) - t0)) s] unpacked"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader
ls -la $S
