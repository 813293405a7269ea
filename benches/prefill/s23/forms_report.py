#!/usr/bin/env python3
"""Session 23: per-layer ratios of call2.sh's three-variant blocked.py run: H / DEF and HQ / DEF
on `a`'s narrow `t` layers (the letters change only `t`'s producer), HQ / H there, and the A/A
control the run carries: on the one-tile layers all three variants are DEF's kernel.

    python3 forms_report.py [--skip 1] [--mid VARIANT] DIR [DIR ...] > forms.md

--mid: the middle variant, H by default (call 2); call 3 ran Q (3x64x1owghvuncafbdQm) there.

moa ms of a layer = the median over the kept passes (pre-pass included, as ab_report.py).
"""
import argparse
import gzip
import json
import os
import statistics as st
from collections import defaultdict

DEF, H, HQ = "3x64x1owghvuncafbdm", "3x64x1owghvuncafbdHm", "3x64x1owghvuncafbdHQm"
NARROW = {"vicuna7b": {2, 4, *range(22, 32)}, "llama3_8b": {1, 18, 19, 21, 23, *range(25, 32)}}


def load(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            f = gzip.open(p, "rt") if p.endswith(".gz") else open(p)
            return [json.loads(l) for l in f if l.strip()]
    return []


ap = argparse.ArgumentParser()
ap.add_argument("--skip", type=int, default=1)
ap.add_argument("--mid", default=H)
ap.add_argument("dirs", nargs="+")
a = ap.parse_args()
H = a.mid
NAME = "Q" if H.endswith("Qm") and "HQ" not in H else "H"
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


print(f"| plan | prompt x rows | {NAME} / DEF `t` layers: median (min-max) | HQ / DEF `t` layers | HQ / {NAME} `t` layers | "
      f"HQ / DEF sum (every layer) | A/A {NAME} / DEF one-tile layers | A/A HQ / DEF one-tile layers |")
print("|---|---|---|---|---|---|---|---|")
rows = []
for c in cfgs:
    m = {v: {l: st.median(x) for l, x in t[(c, v)].items()} for v in (DEF, H, HQ)}
    ls = sorted(set.intersection(*(set(x) for x in m.values()))) if all(m.values()) else []
    if not ls:
        continue
    nar = NARROW[c[0]]
    r = lambda v, w, sel: [m[v][l] / m[w][l] for l in ls if (l in nar) == sel]
    s = sum(m[HQ][l] for l in ls) / sum(m[DEF][l] for l in ls)
    print(f"| {c[0]} | {c[1]} x {c[2]} | {rng(r(H, DEF, True))} | {rng(r(HQ, DEF, True))} | {rng(r(HQ, H, True))} | "
          f"{s:.3f} | {rng(r(H, DEF, False))} | {rng(r(HQ, DEF, False))} |")
    rows.append((c, m, ls, nar))
print("\n## Per layer (ms: median of the kept passes)\n")
for c, m, ls, nar in rows:
    print(f"\n{c[0]} {c[1]} x {c[2]}\n")
    print(f"| layer | form | kept share | DEF ms | {NAME} / DEF | HQ / DEF | passes |")
    print("|---|---|---|---|---|---|---|")
    for l in ls:
        print(f"| {l} | {'t' if l in nar else 'one-tile'} | {share[(c, l)]:.3f} | {m[DEF][l]:.3f} | {m[H][l] / m[DEF][l]:.3f} | "
              f"{m[HQ][l] / m[DEF][l]:.3f} | {len(t[(c, DEF)][l])} |")
