#!/usr/bin/env python3
"""Picks one plan per density from a `moa eval --json` report of candidate plans on the
held-out validation grid (issue 9, session 7): retrieval first, perplexity second.

50%: a candidate is eligible when, for every task family and length, it scores within 1
case of dense and at least 2 cases above the uniform 50% window (issue 9's targets, on
the validation seed); 25%: when it keeps at least 90% of dense's correct answers summed
over the lengths, for every family. Among the eligible, the lowest perplexity (mean nats of
the validation text) wins; when none is eligible, the most satisfied cells (50%) or the
largest retrieval sum (25%) wins, perplexity breaking ties.

Usage: select_plans.py val.json PREFIX50 PREFIX25   (prints `density name` lines and a table)
"""
import json
import math
import sys


def mean_nats(p):
    xs = [x for w in (p.get("perplexity_nats") or []) for x in w]
    return sum(xs) / len(xs) if xs else float("inf")


def grid(p):
    # {family: [correct per length]}
    return {g["family"]: [sum(1 for c in row if c) for row in g["correct"]] for g in p["retrieval"]}


def main(path, pre50, pre25):
    r = json.load(open(path))
    plans = {p["name"]: p for p in r["plans"]}
    dense = plans["dense"]
    dg, dn = grid(dense), mean_nats(dense)
    uni = {k: grid(v) for k, v in plans.items() if k.startswith("uniform-")}
    rows = []
    pick = {}
    for pre, uname in ((pre50, "uniform-50"), (pre25, "uniform-25")):
        best = None
        for name, p in plans.items():
            if not name.startswith(pre):
                continue
            g, n = grid(p), mean_nats(p)
            ug = uni.get(uname, {})
            if pre == pre50:
                cells = [(g[f][i] >= dg[f][i] - 1) + (g[f][i] >= ug.get(f, [0] * 99)[i] + 2)
                         for f in dg for i in range(len(dg[f]))]
                score = sum(cells)
                ok = score == 2 * len(cells)
            else:
                score = sum(sum(g[f]) for f in dg)
                ok = all(sum(g[f]) >= 0.9 * sum(dg[f]) for f in dg)
            key = (ok, score, -n)
            rows.append((name, g, n, ok, score))
            if best is None or key > best[0]:
                best = (key, name)
        if best:
            pick[pre] = best[1]
    print("| candidate | " + " | ".join(f"{f} per length" for f in dg) + " | ppl vs dense | eligible | score |")
    print("|---|" + "---|" * len(dg) + "---|---|---|")
    for name in ["dense"] + sorted(uni):
        g, n = grid(plans[name]), mean_nats(plans[name])
        print(f"| {name} | " + " | ".join("/".join(map(str, g[f])) for f in dg)
              + f" | {100 * (math.exp(n - dn) - 1):+.1f}% | | |")
    for name, g, n, ok, score in rows:
        print(f"| {name} | " + " | ".join("/".join(map(str, g[f])) for f in dg)
              + f" | {100 * (math.exp(n - dn) - 1):+.1f}% | {'yes' if ok else 'no'} | {score} |")
    for pre, name in pick.items():
        print(f"CHOSEN {pre} {name}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
