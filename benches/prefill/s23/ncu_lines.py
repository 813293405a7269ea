#!/usr/bin/env python3
"""Nsight Compute's source page (`--page source --csv --print-source cuda,sass`, cubins with
line tables: `cuda_cubins --lineinfo`) of one prefill launch, grouped into regions by the
generated source's lines (session 23).

    python3 ncu_lines.py CSV KERNEL SOURCE.cu UNITS CYCLES REGION:FIRST-LAST [REGION:FIRST-LAST]

Each SASS instruction carries the line of the innermost inlined code (a helper or a lambda
body); it is charged to the last CALL-SITE line met in address order, a call-site line being
one inside a REGION's range. UNITS: query tiles of the launch; CYCLES: sm__cycles_active.avg.
Every warp of a block runs the whole launch, so each consumer warp's time per query tile is
CYCLES x 132 / UNITS; a region's share of the consumer samples (regions not named
`producer`) times that is the time an average consumer warp spends in it per query tile (at
f_SM from the details page: --ghz). Prints samples, share, cycles and us per consumer warp
per query tile, the 3 largest stall reasons, and warp instructions per query tile.
"""
import argparse
import collections
import csv
import gzip

ap = argparse.ArgumentParser()
ap.add_argument("csv")
ap.add_argument("kernel")
ap.add_argument("source")
ap.add_argument("units", type=int)
ap.add_argument("cycles", type=float)
ap.add_argument("regions", nargs="+")
ap.add_argument("--ghz", type=float, default=1.73)
ap.add_argument("--sms", type=int, default=132)
a = ap.parse_args()
regions = []
for r in a.regions:
    name, span = r.rsplit(":", 1)
    lo, hi = span.split("-")
    regions.append((name, int(lo), int(hi)))
rows = list(csv.reader(gzip.open(a.csv, "rt") if a.csv.endswith(".gz") else open(a.csv)))
starts = [i for i, r in enumerate(rows) if r and r[0] == "File Path"]
k = next(i for i in starts if rows[i + 1][1] == a.kernel)
end = min([i for i in starts if i > k] + [len(rows)])
hdr = rows[k + 2]
stall = [h for h in hdr if h.startswith("stall_") and "Not Issued" not in h]
insts = []
line = None
for r in rows[k + 3 : end]:
    if r[0] != "":
        line = int(r[0])
        continue
    if not r[2].startswith("0x"):
        continue
    d = dict(zip(hdr, r))
    st = {h[6:]: int(d[h]) for h in stall if d[h] not in ("", "0", "-")}
    insts.append((int(r[2], 16), line, int(d["# Samples"] or 0), st, int(d["Instructions Executed"] or 0)))
insts.sort()


def region_of(ln):
    for name, lo, hi in regions:
        if ln is not None and lo <= ln <= hi:
            return name
    return None


acc = collections.OrderedDict((n, [0, collections.Counter(), 0]) for n, _, _ in regions)
acc["(before any call site)"] = [0, collections.Counter(), 0]
cur = "(before any call site)"
for _, ln, s, st, ie in insts:
    cur = region_of(ln) or cur
    acc[cur][0] += s
    acc[cur][1].update(st)
    acc[cur][2] += ie
total = sum(v[0] for v in acc.values())
cons = sum(v[0] for n, v in acc.items() if n != "producer")
per_tile = a.cycles * a.sms / a.units
print(f"{a.kernel}: {total} samples ({cons} outside the producer), {a.units} query tiles, "
      f"{a.cycles:.0f} active cycles: {per_tile:.0f} cycles ({per_tile / a.ghz / 1000:.2f} us) a query tile per warp\n")
print("| region | samples | share of consumer samples | cycles per consumer warp per query tile | us | top stall reasons | warp instructions per query tile |")
print("|---|---|---|---|---|---|---|")
for n, (s, c, ie) in acc.items():
    if s == 0 and ie == 0:
        continue
    top = ", ".join(f"{x} {v}" for x, v in c.most_common(3))
    if n == "producer":
        print(f"| {n} | {s} | – | – | – | {top} | {ie / a.units:.0f} |")
    else:
        cyc = s / cons * per_tile
        print(f"| {n} | {s} | {100 * s / cons:.1f}% | {cyc:.0f} | {cyc / a.ghz / 1000:.2f} | {top} | {ie / a.units:.0f} |")
