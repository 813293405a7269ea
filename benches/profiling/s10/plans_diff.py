#!/usr/bin/env python3
"""How a line of plans moves (issue 9, session 10): for each plan, its KV groups per β
(every plan here has α = 0 and one rule per KV group), which groups get the whole length,
and how many groups changed against the plan before it.

Usage: plans_diff.py PLAN.toml ...   (in order: the start plan first)
"""
import sys
import tomllib
from collections import Counter


def groups(path):
    t = tomllib.load(open(path, "rb"))
    g = t["model"]["q_heads"] // t["model"]["kv_heads"]
    out = []
    for li, layer in enumerate(t["layers"]):
        for k in range(0, len(layer["beta"]), g):
            out.append(((li, k // g), layer["alpha"][k], layer["beta"][k]))
    return out


def main(paths):
    prev = None
    print("| plan | KV groups per β (α = 0) | groups at N | changed vs previous |")
    print("|---|---|---|---|")
    for p in paths:
        gs = groups(p)
        per = Counter(b for _, a, b in gs)
        full = [f"{l}.{k}" for (l, k), a, b in gs if b >= 1.0]
        changed = "" if prev is None else str(sum(1 for x, y in zip(gs, prev) if x != y))
        name = p.rsplit("/", 1)[-1].removesuffix(".toml")
        hist = " ".join(f"{b:g}:{n}" for b, n in sorted(per.items()))
        print(f"| {name} | {hist} | {' '.join(full)} | {changed} |")
        prev = gs


if __name__ == "__main__":
    main(sys.argv[1:])
