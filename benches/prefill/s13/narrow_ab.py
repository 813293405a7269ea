#!/usr/bin/env python3
"""`a` (persistent blocks on narrow layers) against the one-tile default, split by the rule.

Reads a call's ab4k.jsonl / ab16k.jsonl (or .gz) (bench_prefill rows of 3x64x1owghvunc and
3x64x1owghvunca) and peers.jsonl[.gz] (dense causal SDPA), takes the layers that `a` generates
with persistent blocks (NARROW: codegen::cuda::prefill_span_share <= 0.4 at N = 16384 on
the repository's upstream plans, printed by the compiler at this commit), and prints per
configuration the geometric mean and worst of time(a) / time(base) over the narrow layers
and over the others (whose kernels are the same), and the layers' moa / ideal.

usage: narrow_ab.py CALL_FOLDER
"""
import gzip, json, math, os, statistics as st, sys
from collections import defaultdict

d = sys.argv[1]


def lines(name):
    path = os.path.join(d, name)
    return gzip.open(path + ".gz", "rt") if os.path.exists(path + ".gz") else open(path)


g = defaultdict(list)
for f in ("ab4k.jsonl", "ab16k.jsonl"):
    for line in lines(f):
        r = json.loads(line)
        g[(r["plan"], r["prompt"], r["layer"], r["variant"])].append(r)
dense = {}
for line in lines("peers.jsonl"):
    p = json.loads(line)
    if p.get("dense_ms"):
        dense[(p["plan"], p["prompt"])] = p["dense_ms"]
NARROW = {
    "vicuna7b": {2, 4, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31},
    "llama3_8b": {1, 18, 19, 21, 23, 25, 26, 27, 28, 29, 30, 31},
}
rows = []
for (plan, prompt, layer, v), rs in g.items():
    if v != "3x64x1owghvunc":
        continue
    a = g[(plan, prompt, layer, "3x64x1owghvunca")]
    b = st.median(x["moa_ms"] for x in rs)
    c = st.median(x["moa_ms"] for x in a)
    ideal = rs[0]["kept_share"] * dense[(plan, prompt)]
    rows.append((plan, prompt, layer, layer in NARROW[plan], c / b, b / ideal, c / ideal))
geo = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))
print("| plan | prompt | narrow layers: a / base geomean, worst | other layers: geomean, worst | worst moa / ideal, base -> a |")
print("|---|---|---|---|---|")
for plan in ("vicuna7b", "llama3_8b"):
    for prompt in (4096, 16384):
        sel = [r for r in rows if r[0] == plan and r[1] == prompt]
        n = [r[4] for r in sel if r[3]]
        o = [r[4] for r in sel if not r[3]]
        wb = max(sel, key=lambda r: r[5])
        wa = max(sel, key=lambda r: r[6])
        print(f"| {plan} | {prompt} | {len(n)}: {geo(n):.3f}, {max(n):.3f} | {len(o)}: {geo(o):.3f}, {max(o):.3f} "
              f"| {wb[5]:.2f} (l{wb[2]}) -> {wa[6]:.2f} (l{wa[2]}) |")
n = [r[4] for r in rows if r[3]]
print(f"\nall narrow rows: {len(n)}, geomean {geo(n):.4f}, worst {max(n):.3f}; "
      f"layers within 1.15x of the ideal: base {sum(r[5] <= 1.15 for r in rows)}, a {sum(r[6] <= 1.15 for r in rows)} of {len(rows)}")
