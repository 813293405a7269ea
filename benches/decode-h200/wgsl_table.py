#!/usr/bin/env python3
"""Side-by-side table of WGSL decode lists (wgpu_decode_bench `upstream` output).

usage: wgsl_table.py [--skip LAYER] NAME=FILE [NAME=FILE ...]
Each FILE holds the bench's JSON lines; layer 31 (each upstream list's throwaway first
configuration), or LAYER where given, is left out. Prints, per (plan, layer, B, prompt), each list's share of
the copy kernel's rate, and each list's geometric mean over the rows all lists have
against the first list's (time ratio: < 1 is faster than the first).
"""
import json
import math
import sys

cols = []
args = sys.argv[1:]
skip = 31
if args[:1] == ["--skip"]:
    skip = int(args[1])
    args = args[2:]
for arg in args:
    name, path = arg.split("=", 1)
    rows = {}
    try:
        with open(path) as f:
            for line in f:
                if not line.startswith('{"impl":"wgpu-decode"'):
                    continue
                r = json.loads(line)
                if r["layer"] == skip or r.get("part", "step") != "step":
                    continue
                key = (r["kv_bytes"], r["layer"], r["batch"], r["prompt"], r["chunk"] if not r["auto"] else "auto")
                rows[key] = r
    except OSError:
        pass
    cols.append((name, rows))

keys = sorted({k for _, rows in cols for k in rows}, key=lambda k: (k[3], -k[2], k[1], str(k[4])))
print("layer B prompt chunk | " + " | ".join(n for n, _ in cols) + "   (share of copy, us)")
for k in keys:
    cells = []
    for _, rows in cols:
        r = rows.get(k)
        cells.append(f"{r['of_copy']:.2f} {r['us']:.0f}" if r else "-")
    print(f"{k[1]} {k[2]} {k[3]} {k[4]} | " + " | ".join(cells))
if cols:
    base = cols[0][1]
    for name, rows in cols[1:]:
        common = [k for k in base if k in rows]
        if common:
            g = math.exp(sum(math.log(rows[k]["us"] / base[k]["us"]) for k in common) / len(common))
            worst = max(rows[k]["us"] / base[k]["us"] for k in common)
            best = min(rows[k]["us"] / base[k]["us"] for k in common)
            print(f"{name} / {cols[0][0]} time: geomean {g:.3f}, range {best:.3f}-{worst:.3f} over {len(common)} rows")
