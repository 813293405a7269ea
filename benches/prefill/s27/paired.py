#!/usr/bin/env python3
"""Pass-level pairs of a two-variant blocked.py run (session 27): in every kept pass (round)
of each configuration, B / A of the summed moa ms over the `t` layers and over the one-tile
layers (`a`'s narrow-layer rule, forms_report.py's NARROW), and how many passes B was faster
in. The A/A beside it: A's passes against its next pass (odd / even rounds paired), the
same sums. Blocks run A B B A, so B / A of one pass compares blocks at most 2 apart.

    python3 paired.py --ab A,B [--skip 1] DIR [DIR ...] > paired.md
"""
import argparse
import gzip
import json
import os
import statistics as st
from collections import defaultdict

NARROW = {"vicuna7b": {2, 4, *range(22, 32)}, "llama3_8b": {1, 18, 19, 21, 23, *range(25, 32)}}


def load(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            f = gzip.open(p, "rt") if p.endswith(".gz") else open(p)
            return [json.loads(l) for l in f if l.strip()]
    return []


ap = argparse.ArgumentParser()
ap.add_argument("--skip", type=int, default=1)
ap.add_argument("--ab", required=True)
ap.add_argument("dirs", nargs="+")
a = ap.parse_args()
A, B = a.ab.split(",")
# (cfg, variant, round, form) -> sum of moa ms
s = defaultdict(float)
rounds = defaultdict(set)
for d in a.dirs:
    for r in load(os.path.join(d, "moa.jsonl")):
        if r["round"] < a.skip:
            continue
        c = (r["plan"], r["prompt"], r["rows"])
        form = "t" if r["layer"] in NARROW[r["plan"]] else "one-tile"
        s[(c, r["variant"], r["round"], form)] += r["moa_ms"]
        rounds[c].add(r["round"])
print("| plan | prompt x rows | form | B / A per pass: median (min-max) | B faster | A/A (A's pass pairs): median (min-max) |")
print("|---|---|---|---|---|---|")
for c in sorted(rounds):
    rs = sorted(rounds[c])
    for form in ("t", "one-tile"):
        q = [s[(c, B, r, form)] / s[(c, A, r, form)] for r in rs if s[(c, A, r, form)] and s[(c, B, r, form)]]
        aa = [s[(c, A, rs[i + 1], form)] / s[(c, A, rs[i], form)] for i in range(0, len(rs) - 1, 2)]
        if not q:
            continue
        print(f"| {c[0]} | {c[1]} x {c[2]} | {form} | {st.median(q):.4f} ({min(q):.4f}-{max(q):.4f}) | "
              f"{sum(x < 1 for x in q)} of {len(q)} | {st.median(aa):.4f} ({min(aa):.4f}-{max(aa):.4f}) |")
