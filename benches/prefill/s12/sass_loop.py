#!/usr/bin/env python3
"""The consumers' main loop of a wgmma prefill kernel in nvdisasm output: its static
instruction count and opcode histogram (session 12's method: the shortest loop, a label
that a later backward BRA targets, holding at least 4 HGMMA.64x128 (P·V) and 8
HGMMA.64x64 (Q·Kᵀ) instructions).

usage: nvdisasm -c KERNEL.cubin > K.sass; sass_loop.py K.sass
(nvdisasm from PyPI's nvidia-cuda-nvdisasm; cubins from examples/cuda_cubins, or PTX from
NVRTC assembled by the ptxas of scripts/cuda-deps.sh.)
"""
import collections, re, sys

lines = open(sys.argv[1]).read().split("\n")
labels = {}
for i, line in enumerate(lines):
    m = re.match(r"^(\.L_x_\d+):", line.strip())
    if m:
        labels[m.group(1)] = i
best = None
for i, line in enumerate(lines):
    m = re.search(r"BRA `\((\.L_x_\d+)\)", line)
    if m and m.group(1) in labels and labels[m.group(1)] < i:
        body = lines[labels[m.group(1)] : i + 1]
        if sum("HGMMA.64x128" in b for b in body) >= 4 and sum("HGMMA.64x64" in b for b in body) >= 8:
            if best is None or i - labels[m.group(1)] < best[1] - best[0]:
                best = (labels[m.group(1)], i)
if best is None:
    sys.exit(f"{sys.argv[1]}: no consumer loop found")
ops = collections.Counter()
for line in lines[best[0] : best[1] + 1]:
    m = re.match(r"^\s*/\*[0-9a-f]{4}\*/\s*(@!?U?P\w+\s+)?([A-Z0-9_]+)", line)
    if m:
        ops[m.group(2)] += 1
print(sys.argv[1], "loop lines", best[0], best[1], "instructions", sum(ops.values()))
print(" ".join(f"{k}:{v}" for k, v in ops.most_common(30)))
