#!/usr/bin/env python3
"""Picks the fastest decode variant / chunk policy from attention_bench JSON lines
(benches/decode-h200/run4.sh): geometric mean of the read rate over the measurements
every candidate has (same model, batch, prompt, layer). Prints a table to stderr and the
winner (`variant` or `chunk_arg`, per --by) to stdout."""
import argparse
import json
import math
import sys

ap = argparse.ArgumentParser()
ap.add_argument("jsonl", nargs="+")
ap.add_argument("--by", choices=["variant", "chunk_arg"], required=True)
args = ap.parse_args()
rows = [json.loads(line) for p in args.jsonl for line in open(p) if line.strip()]
key = lambda r: (r["model"], r["batch"], r["prompt"], r["layer"])
cands = {}
for r in rows:
    cands.setdefault(r[args.by], {})[key(r)] = r["tbps"]
common = set.intersection(*(set(v) for v in cands.values())) if cands else set()
if not common:
    sys.exit("no measurement common to every candidate")
score = {c: math.exp(sum(math.log(v[k]) for k in common) / len(common)) for c, v in cands.items()}
groups = sorted({k[:3] for k in common})
print(f"| {args.by} | geomean TB/s | " + " | ".join(f"{m} B{b} {p // 1024}k min/geomean" for m, b, p in groups) + " |", file=sys.stderr)
for c, s in sorted(score.items(), key=lambda x: -x[1]):
    cells = []
    for g in groups:
        vals = [cands[c][k] for k in common if k[:3] == g]
        cells.append(f"{min(vals):.2f} / {math.exp(sum(map(math.log, vals)) / len(vals)):.2f}")
    print(f"| {c} | {s:.3f} | " + " | ".join(cells) + " |", file=sys.stderr)
print(max(score, key=score.get))
