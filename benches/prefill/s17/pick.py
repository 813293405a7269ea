#!/usr/bin/env python3
"""Call 2's choice between the launch orders: per row (plan, prompt, rows, layer) each
variant's median over rounds over the first variant's (DEF), the geometric mean over every
row of both plans, and the worst row; prints the table and, last, the variant with the
lowest geometric mean among the others (the one whose checks the call runs).

    python3 pick.py ab4k.jsonl ab16k.jsonl
"""
import json
import math
import statistics
import sys
from collections import defaultdict

t = defaultdict(list)
order = []
for f in sys.argv[1:]:
    for l in open(f):
        if not l.strip():
            continue
        r = json.loads(l)
        v = r["variant"]
        if v not in order:
            order.append(v)
        t[(r["plan"], r["prompt"], r["rows"], r["layer"], v)].append(r["moa_ms"])
base = order[0]
rows = sorted({k[:4] for k in t})
best = None
for v in order[1:]:
    rs = [statistics.median(t[k + (v,)]) / statistics.median(t[k + (base,)]) for k in rows if (k + (v,)) in t and (k + (base,)) in t]
    if not rs:
        continue
    g = math.exp(sum(map(math.log, rs)) / len(rs))
    print(f"{v}: {len(rs)} rows, geomean {g:.4f}, worst {max(rs):.3f}, best {min(rs):.3f}")
    if best is None or g < best[0]:
        best = (g, v)
print(best[1] if best else base)
