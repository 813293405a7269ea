#!/usr/bin/env python3
"""Session 22: per-layer ratios of the three-variant blocked.py run (call1.sh): X / DEF (`x`,
the early query-tile switch, on `a`'s narrow `t` layers), TX / DEF on the other layers (`t`
with `x` against one block per query tile), and the A/A controls the run carries: on the
one-tile layers X's kernel is DEF's, on the narrow layers TX's is X's (other cubins, same
source).

    python3 forms_report.py [--skip 1] DIR [DIR ...] > forms.md

moa ms of a layer = the median over the kept passes (pre-pass included, as ab_report.py).
"""
import argparse
import gzip
import json
import os
import statistics as st
from collections import defaultdict

DEF, X, TX = "3x64x1owghvuncafbdm", "3x64x1owghvuncafbdxm", "3x64x1owghvunctfbdxm"
NARROW = {"vicuna7b": {2, 4, *range(22, 32)}, "llama3_8b": {1, 18, 19, 21, 23, *range(25, 32)}}


def load(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            f = gzip.open(p, "rt") if p.endswith(".gz") else open(p)
            return [json.loads(l) for l in f if l.strip()]
    return []


ap = argparse.ArgumentParser()
ap.add_argument("--skip", type=int, default=1)
ap.add_argument("dirs", nargs="+")
a = ap.parse_args()
t = defaultdict(lambda: defaultdict(list))  # (cfg, variant) -> layer -> [ms]
share = {}
for d in a.dirs:
    for r in load(os.path.join(d, "moa.jsonl")):
        if r["round"] < a.skip:
            continue
        c = (r["plan"], r["prompt"], r["rows"])
        t[(c, r["variant"])][r["layer"]].append(r["moa_ms"])
        share[(c, r["layer"])] = r["kept_share"]
cfgs = sorted({c for c, _ in t})


def rng(xs):
    return f"{st.median(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})" if xs else "-"


print("| plan | prompt x rows | X / DEF `t` layers: median (min-max) | X / DEF sum | A/A X / DEF one-tile layers | "
      "TX / DEF one-tile layers | A/A TX / X `t` layers |")
print("|---|---|---|---|---|---|---|")
rows = []
for c in cfgs:
    m = {v: {l: st.median(x) for l, x in t[(c, v)].items()} for v in (DEF, X, TX)}
    ls = sorted(set.intersection(*(set(x) for x in m.values()))) if all(m.values()) else []
    if not ls:
        continue
    nar = NARROW[c[0]]
    xd_n = [m[X][l] / m[DEF][l] for l in ls if l in nar]
    xd_w = [m[X][l] / m[DEF][l] for l in ls if l not in nar]
    td_w = [m[TX][l] / m[DEF][l] for l in ls if l not in nar]
    tx_n = [m[TX][l] / m[X][l] for l in ls if l in nar]
    xs = sum(m[X][l] for l in ls) / sum(m[DEF][l] for l in ls)
    print(f"| {c[0]} | {c[1]} x {c[2]} | {rng(xd_n)} | {xs:.3f} | {rng(xd_w)} | {rng(td_w)} | {rng(tx_n)} |")
    rows.append((c, m, ls, nar))
print("\n## Per layer (ms: median of the kept passes)\n")
for c, m, ls, nar in rows:
    print(f"\n{c[0]} {c[1]} x {c[2]}\n")
    print("| layer | form (DEF) | kept share | DEF ms | X / DEF | TX / DEF | passes |")
    print("|---|---|---|---|---|---|---|")
    for l in ls:
        print(f"| {l} | {'t' if l in nar else 'one-tile'} | {share[(c, l)]:.3f} | {m[DEF][l]:.3f} | {m[X][l] / m[DEF][l]:.3f} | "
              f"{m[TX][l] / m[DEF][l]:.3f} | {len(t[(c, DEF)][l])} |")
