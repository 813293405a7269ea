#!/usr/bin/env python3
"""Plain against programmatic dependent launches (attention_bench --launch plain,pdl, the
same call) per configuration: read rate min / geometric mean, layers at >= 0.95 of dense
SDPA's rate (decode_peers.py JSON lines of the same call), and a least-squares fit of
time = bytes / R + c over the layers (R the marginal rate, c the fixed cost per launch).

    python3 benches/decode-h200/pdl.py bench-both.jsonl peers.jsonl
"""
import json
import math
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
peers = [json.loads(line) for line in open(sys.argv[2]) if line.strip()] if len(sys.argv) > 2 else []
sdpa = {(r["model"], r["batch"], r["prompt"]): r["tbps"] for r in peers if r.get("impl") == "sdpa"}
cfgs = sorted({(r["model"], r["batch"], r["prompt"]) for r in rows}, key=lambda c: (c[0] != "vicuna-7b", -c[1], c[2]))


def fit(rs):
    xs = [r["kv_bytes"] / 1e6 for r in rs]  # MB
    ys = [r["us"] for r in rs]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return float("nan"), float("nan")
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return 1.0 / b, my - b * mx  # MB/µs = TB/s, µs


print("| model | B | prompt | launch | TB/s min / geomean | layers ≥ 0.95 × SDPA | fit R TB/s | fit c µs | pdl time / plain time, min / geomean / max |")
print("|---|---|---|---|---|---|---|---|---|")
for c in cfgs:
    by = {}
    for r in rows:
        if (r["model"], r["batch"], r["prompt"]) == c:
            by.setdefault(r.get("launch", "plain"), {})[r["layer"]] = r
    for launch in ("plain", "pdl"):
        if launch not in by:
            continue
        rs = list(by[launch].values())
        t = [r["tbps"] for r in rs]
        gm = math.exp(sum(map(math.log, t)) / len(t))
        s = sdpa.get(c)
        ok = f"{sum(x >= 0.95 * s for x in t)}/{len(t)}" if s else "n/a"
        R, c0 = fit(rs)
        ratio = ""
        if launch == "pdl" and "plain" in by:
            q = [by["pdl"][l]["us"] / by["plain"][l]["us"] for l in by["pdl"] if l in by["plain"]]
            ratio = f"{min(q):.3f} / {math.exp(sum(map(math.log, q)) / len(q)):.3f} / {max(q):.3f}"
        print(f"| {c[0]} | {c[1]} | {c[2]} | {launch} | {min(t):.2f} / {gm:.2f} | {ok} | {R:.2f} | {c0:.1f} | {ratio} |")
