#!/usr/bin/env python3
"""Session 21: per-layer ratios of a four-variant blocked.py run (call1.sh): Z / DEF (the
5-stage ring, `z`), T / ONE (persistent blocks `t` against one block per query tile, on every
layer), and the A/A controls the run carries: on a narrow (`t`) layer Z's and T's kernels are
DEF's, on the others ONE's is DEF's (other cubins, same source).

    python3 forms_report.py [--skip 1] DIR [DIR ...] > forms.md

moa ms of a layer = the median over the kept passes (pre-pass included, as ab_report.py).
"""
import argparse
import gzip
import json
import os
import statistics as st
from collections import defaultdict

DEF, Z, ONE, T = "3x64x1owghvuncafbdm", "3x64x1owghvuncafbdzm", "3x64x1owghvuncfbdm", "3x64x1owghvunctfbdm"
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


print("| plan | prompt x rows | Z / DEF one-tile layers: median (min-max) | Z / DEF sum | A/A Z / DEF `t` layers | "
      "T / ONE narrow layers | T / ONE other layers | A/A DEF / ONE other layers | A/A DEF / T narrow layers |")
print("|---|---|---|---|---|---|---|---|---|")
rows = []
for c in cfgs:
    m = {v: {l: st.median(x) for l, x in t[(c, v)].items()} for v in (DEF, Z, ONE, T)}
    ls = sorted(set.intersection(*(set(x) for x in m.values()))) if all(m.values()) else []
    if not ls:
        continue
    nar = NARROW[c[0]]
    zd_w = [m[Z][l] / m[DEF][l] for l in ls if l not in nar]
    zd_n = [m[Z][l] / m[DEF][l] for l in ls if l in nar]
    to_n = [m[T][l] / m[ONE][l] for l in ls if l in nar]
    to_w = [m[T][l] / m[ONE][l] for l in ls if l not in nar]
    aa_w = [m[DEF][l] / m[ONE][l] for l in ls if l not in nar]
    aa_n = [m[DEF][l] / m[T][l] for l in ls if l in nar]
    zs = sum(m[Z][l] for l in ls) / sum(m[DEF][l] for l in ls)
    print(f"| {c[0]} | {c[1]} x {c[2]} | {rng(zd_w)} | {zs:.3f} | {rng(zd_n)} | {rng(to_n)} | {rng(to_w)} | {rng(aa_w)} | {rng(aa_n)} |")
    rows.append((c, m, ls, nar))
print("\n## Per layer (ms: median of the kept passes)\n")
for c, m, ls, nar in rows:
    print(f"\n{c[0]} {c[1]} x {c[2]}\n")
    print("| layer | form (DEF) | kept share | DEF ms | Z / DEF | T / ONE | passes |")
    print("|---|---|---|---|---|---|---|")
    for l in ls:
        print(f"| {l} | {'t' if l in nar else 'one-tile'} | {share[(c, l)]:.3f} | {m[DEF][l]:.3f} | {m[Z][l] / m[DEF][l]:.3f} | "
              f"{m[T][l] / m[ONE][l]:.3f} | {len(t[(c, DEF)][l])} |")
