#!/usr/bin/env python3
"""Interleaved A/B of prefill variants from `bench_prefill --rounds R` (R >= 2), with A/A noise.

bench_prefill times the variants in turn R times per layer (A B C A B C ...), one JSON line
per (layer, variant, round) with that round's median of --reps launches. Per row
(plan, prompt, rows, layer):

  * a variant's time is the median of its R round times;
  * A/B: its time over the first variant's (the baseline), and the paired ratio per round
    (variant_r / baseline_r; median over rounds), which cancels drift between rounds;
  * A/A (the noise): for each variant, the mean of its even rounds over the mean of its
    odd rounds. Its spread over the rows is what one variant measured against itself
    varies by; a B/A ratio inside that spread is not a difference.

Prints a Markdown summary to stdout and writes --collapsed: one line per (row, variant)
with moa_ms = the median over rounds (the input of benches/peers/prefill_peers.py).

    python3 ab.py full4k.jsonl full16k.jsonl --collapsed ab.jsonl > ab.md
"""

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--collapsed", default=None)
    args = ap.parse_args()

    times = defaultdict(lambda: defaultdict(dict))  # row -> variant -> round -> ms
    lines = {}
    order = []
    for path in args.files:
        for line in open(path):
            if not line.strip():
                continue
            r = json.loads(line)
            row = (r["plan"], r["prompt"], r["rows"], r["layer"])
            v = r["variant"]
            if v not in order:
                order.append(v)
            times[row][v][r.get("round", 0)] = r["moa_ms"]
            lines.setdefault((row, v), r)
    if not times:
        sys.exit("no rows")
    base = order[0]
    med = {(row, v): statistics.median(rs.values()) for row, vs in times.items() for v, rs in vs.items()}

    print(f"rows: {len(times)}, variants: {', '.join(order)}, baseline: {base}\n")
    print("A/A noise: mean of even rounds / mean of odd rounds of the same variant, over every row\n")
    print("| variant | rounds | geomean | 5th pct | 95th pct | min | max | max abs log ratio |")
    print("|---|---|---|---|---|---|---|---|")
    noise = {}
    for v in order:
        aa = []
        for row, vs in times.items():
            rs = vs.get(v, {})
            ev = [t for k, t in rs.items() if k % 2 == 0]
            od = [t for k, t in rs.items() if k % 2 == 1]
            if ev and od:
                aa.append(statistics.mean(ev) / statistics.mean(od))
        if not aa:
            continue
        worst = max(abs(math.log(x)) for x in aa)
        noise[v] = worst
        n_rounds = max(len(vs.get(v, {})) for vs in times.values())
        print(f"| {v} | {n_rounds} | {geomean(aa):.4f} | {pct(aa, 5):.4f} | {pct(aa, 95):.4f} | {min(aa):.4f} | {max(aa):.4f} | {worst:.4f} |")

    print(f"\nA/B: time / {base} per row (median over rounds; paired: median over rounds of variant_r / {base}_r)\n")
    print("| variant | rows | geomean | best | worst (row) | paired geomean | paired worst (row) | rows slower | rows slower beyond the A/A max |")
    print("|---|---|---|---|---|---|---|---|---|")
    for v in order[1:]:
        rat, paired = [], []
        for row, vs in times.items():
            if v not in vs or base not in vs:
                continue
            rat.append((med[(row, v)] / med[(row, base)], row))
            common = sorted(set(vs[v]) & set(vs[base]))
            paired.append((statistics.median(vs[v][k] / vs[base][k] for k in common), row))
        if not rat:
            continue
        lim = math.exp(max(noise.get(v, 0), noise.get(base, 0)))
        w = max(rat)
        pw = max(paired)
        slower = sum(1 for x, _ in rat if x > 1)
        beyond = sum(1 for x, _ in rat if x > lim)
        fmt = lambda row: f"{row[0]} {row[1]}x{row[2]} l{row[3]}"
        print(f"| {v} | {len(rat)} | {geomean([x for x, _ in rat]):.4f} | {min(x for x, _ in rat):.4f} | {w[0]:.4f} ({fmt(w[1])}) | "
              f"{geomean([x for x, _ in paired]):.4f} | {pw[0]:.4f} ({fmt(pw[1])}) | {slower} | {beyond} (> {lim:.4f}) |")

    # Per configuration (plan, prompt, rows).
    print(f"\nPer configuration: geomean and worst of time / {base}\n")
    print("| plan | prompt | rows | " + " | ".join(order[1:]) + " |")
    print("|---|---|---|" + "---|" * (len(order) - 1))
    confs = sorted({row[:3] for row in times})
    for c in confs:
        cells = []
        for v in order[1:]:
            rs = [med[(row, v)] / med[(row, base)] for row in times if row[:3] == c and (row, v) in med and (row, base) in med]
            cells.append(f"{geomean(rs):.3f}, {max(rs):.3f}" if rs else "–")
        print(f"| {c[0]} | {c[1]} | {c[2]} | " + " | ".join(cells) + " |")

    if args.collapsed:
        with open(args.collapsed, "w") as f:
            for (row, v), r in lines.items():
                r = dict(r)
                r["moa_ms"] = med[(row, v)]
                r["moa_ms_rounds"] = [times[row][v][k] for k in sorted(times[row][v])]
                r.pop("round", None)
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
