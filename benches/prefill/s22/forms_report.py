#!/usr/bin/env python3
"""Per-layer ratios of a blocked.py run (benches/prefill/s19/blocked.py) split by the layer's
form under `a` (`t` on the narrow layers, one block per query tile on the others), with the
A/A controls the run carries (variants whose kernels are identical on some layers).

Session 22 (default; call1.sh): X / DEF (`x`, the early query-tile switch, on `a`'s narrow
`t` layers), TX / DEF on the other layers (`t` with `x` against one block per query tile),
and the A/A controls: on the one-tile layers X's kernel is DEF's, on the narrow layers TX's
is X's (other cubins, same source).

Session 23 (--s23, s23's call2.sh / call3.sh): H / DEF and HQ / DEF on the `t` layers (the
letters change only `t`'s producer), HQ / H there, and the A/A control: on the one-tile
layers all three variants are DEF's kernel. --mid: the middle variant, H by default (call 2);
call 3 ran Q (3x64x1owghvuncafbdQm) there.

Two variants (--ab A,B; session 24): B / A on the `t` layers, the sum over every layer, and
B / A on the one-tile layers (an A/A control where B changes only `t`).

    python3 forms_report.py [--skip 1] [--s23 [--mid VARIANT] | --ab A,B] DIR [DIR ...] > forms.md

moa ms of a layer = the median over the kept passes (pre-pass included, as ab_report.py).
"""
import argparse
import gzip
import json
import os
import statistics as st
from collections import defaultdict

DEF = "3x64x1owghvuncafbdm"
X, TX = "3x64x1owghvuncafbdxm", "3x64x1owghvunctfbdxm"
H, HQ = "3x64x1owghvuncafbdHm", "3x64x1owghvuncafbdHQm"
NARROW = {"vicuna7b": {2, 4, *range(22, 32)}, "llama3_8b": {1, 18, 19, 21, 23, *range(25, 32)}}


def load(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            f = gzip.open(p, "rt") if p.endswith(".gz") else open(p)
            return [json.loads(l) for l in f if l.strip()]
    return []


ap = argparse.ArgumentParser()
ap.add_argument("--skip", type=int, default=1)
ap.add_argument("--s23", action="store_true", help="session 23's DEF, H (or --mid), HQ table")
ap.add_argument("--mid", default=H, help="with --s23: the middle variant")
ap.add_argument("--ab", help="two variants A,B: B / A by form")
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


if a.ab:
    A, B = a.ab.split(",")
    variants = (A, B)
elif a.s23:
    A, B = a.mid, HQ
    variants = (DEF, A, HQ)
    NAME = "Q" if A.endswith("Qm") and "HQ" not in A else "H"
else:
    variants = (DEF, X, TX)
if a.ab:
    print("| plan | prompt x rows | B / A `t` layers: median (min-max) | B / A sum (every layer) | "
          "B / A one-tile layers |")
    print("|---|---|---|---|---|")
elif a.s23:
    print(f"| plan | prompt x rows | {NAME} / DEF `t` layers: median (min-max) | HQ / DEF `t` layers | HQ / {NAME} `t` layers | "
          f"HQ / DEF sum (every layer) | A/A {NAME} / DEF one-tile layers | A/A HQ / DEF one-tile layers |")
    print("|---|---|---|---|---|---|---|---|")
else:
    print("| plan | prompt x rows | X / DEF `t` layers: median (min-max) | X / DEF sum | A/A X / DEF one-tile layers | "
          "TX / DEF one-tile layers | A/A TX / X `t` layers |")
    print("|---|---|---|---|---|---|---|")
rows = []
for c in cfgs:
    m = {v: {l: st.median(x) for l, x in t[(c, v)].items()} for v in variants}
    ls = sorted(set.intersection(*(set(x) for x in m.values()))) if all(m.values()) else []
    if not ls:
        continue
    nar = NARROW[c[0]]
    r = lambda v, w, sel: [m[v][l] / m[w][l] for l in ls if (l in nar) == sel]
    if a.ab:
        s = sum(m[B][l] for l in ls) / sum(m[A][l] for l in ls)
        print(f"| {c[0]} | {c[1]} x {c[2]} | {rng(r(B, A, True))} | {s:.3f} | {rng(r(B, A, False))} |")
    elif a.s23:
        s = sum(m[HQ][l] for l in ls) / sum(m[DEF][l] for l in ls)
        print(f"| {c[0]} | {c[1]} x {c[2]} | {rng(r(A, DEF, True))} | {rng(r(HQ, DEF, True))} | {rng(r(HQ, A, True))} | "
              f"{s:.3f} | {rng(r(A, DEF, False))} | {rng(r(HQ, DEF, False))} |")
    else:
        xs = sum(m[X][l] for l in ls) / sum(m[DEF][l] for l in ls)
        print(f"| {c[0]} | {c[1]} x {c[2]} | {rng(r(X, DEF, True))} | {xs:.3f} | {rng(r(X, DEF, False))} | "
              f"{rng(r(TX, DEF, False))} | {rng(r(TX, X, True))} |")
    rows.append((c, m, ls, nar))
print("\n## Per layer (ms: median of the kept passes)\n")
for c, m, ls, nar in rows:
    print(f"\n{c[0]} {c[1]} x {c[2]}\n")
    base = A if a.ab else DEF
    if a.ab:
        print("| layer | form | kept share | A ms | B / A | passes |")
        print("|---|---|---|---|---|---|")
    elif a.s23:
        print(f"| layer | form | kept share | DEF ms | {NAME} / DEF | HQ / DEF | passes |")
        print("|---|---|---|---|---|---|---|")
    else:
        print("| layer | form (DEF) | kept share | DEF ms | X / DEF | TX / DEF | passes |")
        print("|---|---|---|---|---|---|---|")
    for l in ls:
        head = f"| {l} | {'t' if l in nar else 'one-tile'} | {share[(c, l)]:.3f} | {m[base][l]:.3f} |"
        if a.ab:
            print(f"{head} {m[B][l] / m[A][l]:.3f} | {len(t[(c, A)][l])} |")
        elif a.s23:
            print(f"{head} {m[A][l] / m[DEF][l]:.3f} | {m[HQ][l] / m[DEF][l]:.3f} | {len(t[(c, DEF)][l])} |")
        else:
            print(f"{head} {m[X][l] / m[DEF][l]:.3f} | {m[TX][l] / m[DEF][l]:.3f} | {len(t[(c, DEF)][l])} |")
