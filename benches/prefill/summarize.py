#!/usr/bin/env python3
"""Tables for benches/RESULTS.md from one device call of run-h200.sh.

    python3 summarize.py OUTDIR

Sweep: per variant and layer, moa time / ideal at 16k x 1 and 4k x 4 (ideal = kept share
x the dense causal SDPA time that prefill_peers.py measured on the same shape in the same
call). Full runs: per (plan, prompt, rows, variant) the median and worst layer / ideal and
the worst / dense, from peers.jsonl.
"""
import json
import statistics
import sys
from pathlib import Path

out = Path(sys.argv[1])
peers = [json.loads(l) for l in open(out / "peers.jsonl") if l.strip()]
dense = {(r["plan"], r["prompt"], r["rows"]): r["dense_ms"] for r in peers}
sweep = [json.loads(l) for f in ("sweep16k.jsonl", "sweep4k.jsonl") if (out / f).exists() for l in open(out / f) if l.strip()]
variants = list(dict.fromkeys(r["variant"] for r in sweep))
print("### Sweep: moa / ideal per layer (16k x 1 | 4k x 4)\n")
print("| plan | layer | kept share 16k | " + " | ".join(variants) + " |")
print("|---|---|---|" + "---|" * len(variants))
cell = {}
for r in sweep:
    cell[(r["plan"], r["layer"], r["prompt"], r["rows"], r["variant"])] = r
for plan in dict.fromkeys(r["plan"] for r in sweep):
    for layer in sorted({r["layer"] for r in sweep if r["plan"] == plan}):
        share = cell.get((plan, layer, 16384, 1, variants[0]), {}).get("kept_share", float("nan"))
        cols = []
        for v in variants:
            parts = []
            for (L, B) in ((16384, 1), (4096, 4)):
                r = cell.get((plan, layer, L, B, v))
                d = dense.get((plan, L, B))
                parts.append("–" if r is None or d is None else f"{r['moa_ms'] / (r['kept_share'] * d):.2f}")
            cols.append(" \\| ".join(parts))
        print(f"| {plan} | {layer} | {share:.2f} | " + " | ".join(cols) + " |")
diffs = {}
for r in sweep:
    if r.get("max_diff_vs_first") is not None:
        diffs[r["variant"]] = max(diffs.get(r["variant"], 0.0), r["max_diff_vs_first"])
print("\nLargest output difference to " + variants[0] + ": " + ", ".join(f"{v} {d:.1e}" for v, d in diffs.items()))
# geomean per variant of moa/ideal
print("\n| variant | geomean moa/ideal (sweep rows) | worst |\n|---|---|---|")
import math
for v in variants:
    xs = []
    for r in sweep:
        d = dense.get((r["plan"], r["prompt"], r["rows"]))
        if r["variant"] == v and d:
            xs.append(r["moa_ms"] / (r["kept_share"] * d))
    if xs:
        print(f"| {v} | {math.exp(sum(map(math.log, xs)) / len(xs)):.2f} | {max(xs):.2f} |")
print("\n### Every layer\n")
print("| plan | prompt | rows | variant | dense causal SDPA ms | kept share | moa / ideal: median, worst (layer) | moa / dense: worst (layer) | layers > 1.15x ideal | FlexAttention / ideal: median, worst (layers) |")
print("|---|---|---|---|---|---|---|---|---|---|")
groups = {}
for r in peers:
    groups.setdefault((r["plan"], r["prompt"], r["rows"], r.get("variant", "")), []).append(r)
for (plan, L, B, v), rs in groups.items():
    vi = [x["moa_vs_ideal"] for x in rs]
    w = max(rs, key=lambda x: x["moa_vs_ideal"])
    wd = max(rs, key=lambda x: x["moa_vs_dense"])
    fl = [x["flex_vs_ideal"] for x in rs if x.get("flex_vs_ideal") is not None]
    sh = [x["kept_share"] for x in rs]
    over = sum(1 for x in vi if x > 1.15)
    fls = f"{statistics.median(fl):.2f}, {max(fl):.2f} ({len(fl)})" if fl else "–"
    print(f"| {plan} | {L} | {B} | {v} | {rs[0]['dense_ms']:.3f} | {min(sh):.2f}–{max(sh):.2f} | "
          f"{statistics.median(vi):.2f}, {w['moa_vs_ideal']:.2f} (l{w['layer']}) | {wd['moa_vs_dense']:.2f} (l{wd['layer']}) | {over}/{len(rs)} | {fls} |")
