#!/usr/bin/env python3
"""Decode call 12: attention where a model runs it (after a kernel writing Q and the
current K/V slot, `attention_bench --producer`), plain against programmatic launches, and
plain launches without the producer (this branch's kernel against the call-11 kernel).

    python3 benches/decode-h200/producer.py bench-producer.jsonl bench-plain.jsonl bench-old.jsonl peers.jsonl

Per configuration: read rate min / geometric mean over the 32 layers, the least-squares
fit time = bytes / R + c (c: the fixed cost per launch, µs), time ratios per layer
(min / geometric mean / max), and the targets: layers at >= 0.95 x SDPA's rate (SDPA
alone for the runs without the producer, SDPA after the same writes for the runs with
it) and layers at >= 3.8 TB/s.
"""
import json
import math
import sys


def load(path):
    try:
        return [json.loads(x) for x in open(path) if x.strip()]
    except OSError:
        return []


prod, plain, old, peers = (load(p) for p in sys.argv[1:5])
sdpa = {(r["model"], r["batch"], r["prompt"]): r for r in peers if r.get("impl") == "sdpa"}
sdpa_p = {(r["model"], r["batch"], r["prompt"]): r for r in peers if r.get("impl") == "sdpa_producer"}


def by_cfg(rows, launch=None):
    out = {}
    for r in rows:
        if launch is not None and r.get("launch", "plain") != launch:
            continue
        out.setdefault((r["model"], r["batch"], r["prompt"]), {})[r["layer"]] = r
    return out


def gm(xs):
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def fit(rs):
    xs = [r["kv_bytes"] / 1e6 for r in rs]
    ys = [r["us"] for r in rs]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return float("nan"), float("nan")
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return 1.0 / b, my - b * mx


def ratio(a, b):
    q = [a[l]["us"] / b[l]["us"] for l in a if l in b and b[l]["us"] > 0]
    return f"{min(q):.3f} / {gm(q):.3f} / {max(q):.3f}" if q else ""


runs = [
    ("call-11 kernel, alone", by_cfg(old), sdpa, None),
    ("this kernel, alone", by_cfg(plain), sdpa, "call-11 kernel, alone"),
    ("after producer, plain", by_cfg(prod, "plain"), sdpa_p, None),
    ("after producer, pdl", by_cfg(prod, "pdl"), sdpa_p, "after producer, plain"),
]
cfgs = sorted({c for _, d, _, _ in runs for c in d}, key=lambda c: (c[0], -c[1], c[2]))
print("| model | B | prompt | run | TB/s min / geomean | SDPA TB/s (same position) | layers >= 0.95 x SDPA | layers >= 3.8 TB/s | fit R TB/s | fit c µs | time / reference run, min / geomean / max | producer µs |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
named = {}
for c in cfgs:
    for name, d, peer, ref in runs:
        if c not in d:
            continue
        named[(c, name)] = d[c]
        rs = list(d[c].values())
        t = [r["tbps"] for r in rs]
        s = peer.get(c, {}).get("tbps")
        ok = f"{sum(x >= 0.95 * s for x in t)}/{len(t)}" if s else "n/a"
        R, c0 = fit(rs)
        rr = ratio(d[c], named[(c, ref)]) if ref and (c, ref) in named else ""
        pu = [r.get("producer_us", 0.0) for r in rs]
        pus = f"{min(pu):.2f}–{max(pu):.2f}" if any(pu) else ""
        sp = f"{s:.2f}" if s else "n/a"
        print(f"| {c[0]} | {c[1]} | {c[2]} | {name} | {min(t):.2f} / {gm(t):.2f} | {sp} | {ok} | "
              f"{sum(x >= 3.8 for x in t)}/{len(t)} | {R:.2f} | {c0:.1f} | {rr} | {pus} |")
print()
print("SDPA (dense, bf16): alone / after the producer (net of the producer alone), TB/s and µs")
for c in sorted(sdpa, key=lambda c: (c[0], -c[1], c[2])):
    a, p = sdpa[c], sdpa_p.get(c)
    ptxt = f"{p['tbps']:.2f} TB/s, {p['us']:.1f} µs (pair {p['pair_us']:.1f}, producer {p['producer_us']:.1f})" if p else "n/a"
    print(f"- {c[0]} B={c[1]} {c[2]}: {a['tbps']:.2f} TB/s, {a['us']:.1f} µs / {ptxt}")
