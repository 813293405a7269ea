#!/usr/bin/env python3
"""Where a prefill block's fixed cost goes, from Nsight Compute's source page (SASS) of
one launch (session 19).

    python3 ncu_regions.py ncu_source1.csv.gz KERNEL UNITS REGIONS

KERNEL: the kernel's name as in the CSV (e.g. moa_prefill_bf16_hd128_l15). UNITS: the
number of query tiles of the launch (2816 at Vicuna-7B 4k x 4: one block each in the
one-tile kernel; the persistent kernel's 132 blocks take them in turn). REGIONS: NAME:START
pairs, START the SASS offset (hex, from the kernel's first instruction) where the region begins; each
region ends where the next begins (list them in address order; the last runs to the end).

Warp-state sampling picks one warp of each SM sub-partition every 2^13 cycles (total
samples x 8192 = SM-active cycles x 4 at both launches here), so with the 4 warps each
sub-partition holds (one of each consumer warpgroup and one producer warp), a sample
stands for 4 x 8192 warp-cycles, and a region's samples / UNITS x 4 x 8192 / 12 / f_SM
is the time each consumer warp spends in it per query tile (f_SM from the CSV of details:
1.74 GHz in the lead's call). Not a critical path: the warpgroups overlap each other.
Prints per region: samples, share, per-warp us per query tile, the 3 largest stall
reasons, and the instructions executed per query tile per consumer warp.
"""
import csv
import gzip
import sys
from collections import Counter

path, kernel, units, regions = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
f_sm = 1.74e9
bounds = [(r.split(":")[0], int(r.split(":")[1], 16)) for r in regions]
rows = list(csv.reader(gzip.open(path, "rt") if path.endswith(".gz") else open(path)))
starts = [i for i, r in enumerate(rows) if r and r[0] == "Kernel Name"]
k = next(i for i in starts if rows[i][1] == kernel)
end = next((i for i in starts if i > k), len(rows))
hdr = rows[k + 1]
stall = [h for h in hdr if h.startswith("stall_") and "Not Issued" not in h]
acc = {n: [0, Counter(), 0] for n, _ in bounds}
total = 0
base = None
for r in rows[k + 2 : end]:
    if len(r) < len(hdr):
        continue
    d = dict(zip(hdr, r))
    base = int(d["Address"], 16) if base is None else base
    a = int(d["Address"], 16) - base
    smp = int(d["# Samples"])
    total += smp
    name = None
    for n, s in bounds:
        if a >= s:
            name = n
    if name is None:
        continue
    acc[name][0] += smp
    acc[name][1].update({h[6:]: int(d[h]) for h in stall if d[h] not in ("", "0")})
    acc[name][2] += int(d["Instructions Executed"])
us = 4 * 8192 / 12 / f_sm * 1e6 / units
print(f"{kernel}: {total} samples, {units} query tiles; per-warp us per query tile = samples x {us:.3e}\n")
print("| region | samples | share | us per consumer warp per query tile | top stall reasons | warp instructions per query tile |")
print("|---|---|---|---|---|---|")
for n, _ in bounds:
    s, c, ins = acc[n]
    top = ", ".join(f"{x} {v}" for x, v in c.most_common(3))
    print(f"| {n} | {s} | {100 * s / total:.1f}% | {s * us:.2f} | {top} | {ins / units:.0f} |")
