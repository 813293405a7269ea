#!/usr/bin/env python3
"""moa / ideal per configuration and variant from a collapsed A/B file (ab.py --collapsed)
and prefill_peers.py's SDPA rows: median and worst layer, layers within 1.15x the ideal,
and moa / dense SDPA on the near-dense layers (kept share > 0.9).

    python3 ideal.py ab_full.jsonl peers.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict

ab = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
sdpa = {}
for l in open(sys.argv[2]):
    if not l.strip():
        continue
    r = json.loads(l)
    ms = r.get("sdpa_ms") or r.get("dense_ms")
    if ms:
        sdpa[(r["plan"], r["prompt"], r["rows"])] = ms
rows = defaultdict(list)
for r in ab:
    key = (r["plan"], r["prompt"], r["rows"])
    if key in sdpa:
        rows[(key, r["variant"])].append(r)
print("| plan | prompt x rows | variant | SDPA ms | moa / ideal: median, worst | layers <= 1.15 | near-dense moa / dense (layers) |")
print("|---|---|---|---|---|---|---|")
for (key, v), rs in sorted(rows.items()):
    d = sdpa[key]
    ratio = [(r["moa_ms"] / (r["kept_share"] * d), r["layer"]) for r in rs]
    worst = max(ratio)
    near = [r["moa_ms"] / d for r in rs if r["kept_share"] > 0.9]
    nd = f"{min(near):.2f}-{max(near):.2f} ({len(near)})" if near else "-"
    print(f"| {key[0]} | {key[1]} x {key[2]} | {v} | {d:.3f} | {statistics.median(x for x, _ in ratio):.2f}, "
          f"{worst[0]:.2f} (l{worst[1]}) | {sum(x <= 1.15 for x, _ in ratio)} | {nd} |")
