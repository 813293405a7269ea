#!/bin/bash
# Issue 9 (session 9), device call A of 2: unpacks the `cuda`-feature moa (built after
# 9a373bd: --objective-length repeatable, --drop-wrong) and keeps it with the GGUF's first
# part (xz-compressed: the two calls' carries are 64 MiB each with the tracked tree) in
# /tmp/s9 for call B (the machine stays warm about 30 s). Carry folder as $1.
set -u
D=$1; S=/tmp/s9; mkdir -p $S
t0=$(date +%s)
cp "$D/gguf.xz.part1" $S/
python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$D/moa.xz" $S/moa
chmod +x $S/moa
echo "[$(($(date +%s) - t0)) s] unpacked"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv,noheader
ls -la $S
