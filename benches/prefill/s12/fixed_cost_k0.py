#!/usr/bin/env python3
"""fixed_cost.py's fit with K = 0: kernel ms = F * blocks / 132 + c * tiles / 132, per
variant (weighted by 1 / time^2). With only the upstream plans and the dense plans at 4k x 4
and 16k x 1, K and F do not separate (every upstream configuration has about 2800 blocks),
so session 12's second round compares variants with K fixed at 0.

usage: fixed_cost_k0.py ROUNDS.jsonl[.gz] VARIANT [VARIANT]  (one or more)
"""
import os, statistics as st, sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixed_cost as fc  # noqa: E402

rounds = fc.load(sys.argv[1])
for variant in sys.argv[2:]:
    groups = defaultdict(list)
    for r in rounds:
        if r["variant"] == variant:
            groups[(r["plan"], r["prompt"], r["rows"], r["layer"])].append(r)
    a = [[0.0] * 2 for _ in range(2)]
    b = [0.0] * 2
    for key, rs in groups.items():
        ms = st.median(x["moa_ms"] for x in rs)
        pre = st.median((x["prepass_ms"] or 0.0) for x in rs)
        bl = fc.tiles_per_block(rs[0]["heads_sink_window"], key[1], key[2], int(variant[0]) * 64)
        x = (len(bl) / 132, sum(bl) / 132)
        y = ms - pre
        w = 1 / y**2
        for i in range(2):
            b[i] += w * x[i] * y
            for j in range(2):
                a[i][j] += w * x[i] * x[j]
    f, c = fc.solve(a, b)
    print(f"{variant}: {len(groups)} rows, K = 0: F = {f * 1e3:.2f} us per block, c = {c * 1e3:.3f} us per tile (per SM)")
