#!/usr/bin/env python3
"""Decode tables of session 15 (benches/decode-h200/s15/call1.sh; session 13's tables.py
with session 15's probes and an A/A section).

    python3 tables.py bench.jsonl peers.jsonl probe.jsonl [BASE_VARIANT [REPEAT.jsonl]]

With REPEAT.jsonl (the same variants timed again later in the call, reverse order), a
last section gives per configuration and variant the median [min, max] over the layers
of (variant - base) µs in the first run and in the repeat, and the A/A noise: the
base's repeat - first.

1. Per configuration, variant and policy: read rate over the plan's KV bytes (min /
   geometric mean over the layers), layers >= 0.95 x dense SDPA's rate (after the same
   writes, same call) and >= 3.8 TB/s, the fit time = bytes / R + c, and time / the base
   variant's (default 4x3ems) under the same policy, per layer min / geometric mean / max.
2. Where a launch's fixed cost goes (probes, same lists: waves:10:pairs): per configuration the median
   and range over the layers of x - z (Q, the math and the last tile after the stream),
   y - x (the epilogue and the partial or O writes), em - y (arrival and merge) and
   em - q (waiting for Q), in µs.
3. B = 4, per layer: moa (base and each variant, default policy) against a device copy
   of the same bytes (torch copy_, half read + half written) and SDPA over the same
   bytes, and moa / copy; the proposed bar is moa >= 0.95 x copy.
"""
import json
import math
import sys


def load(path):
    try:
        return [json.loads(x) for x in open(path) if x.strip()]
    except OSError:
        return []


args = sys.argv[1:] + ["", "", ""]
bench, peers, probe = (load(p) for p in args[:3])
BASE = sys.argv[4] if len(sys.argv) > 4 else "4x3ems"
sdpa = {(r["model"], r["batch"], r["prompt"]): r for r in peers if r.get("impl") == "sdpa_producer"}
same = {}
for r in peers:
    if r.get("impl", "").endswith("_same_bytes"):
        same[(r["model"], r["batch"], r["kv_bytes"], r["impl"])] = r


def gm(xs):
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else float("nan")


def fit(rs):
    xs = [r["kv_bytes"] / 1e6 for r in rs]
    ys = [r["us"] for r in rs]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if n < 2 or sxx == 0:
        return float("nan"), float("nan")
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return 1.0 / b, my - b * mx


groups = {}
for r in bench + probe:
    key = (r["model"], r["batch"], r["prompt"], r["variant"], r.get("chunk_arg", "auto"))
    groups.setdefault(key, {})[r["layer"]] = r
cfgs = sorted({k[:3] for k in groups}, key=lambda k: (k[0], -k[1], k[2]))
print(f"| model | B | prompt | variant | policy | TB/s min / geomean | SDPA TB/s | >= 0.95 SDPA | >= 3.8 | fit R / c µs | time / {BASE} (same policy) min / geomean / max |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for cfg in cfgs:
    s = sdpa.get(cfg)
    for k in sorted(k for k in groups if k[:3] == cfg):
        rs = groups[k]
        rows = [rs[i] for i in sorted(rs)]
        rates = [r["tbps"] for r in rows]
        n95 = sum(1 for r in rows if s and r["tbps"] >= 0.95 * s["tbps"])
        n38 = sum(1 for r in rows if r["tbps"] >= 3.8)
        R, c = fit(rows)
        base = groups.get(cfg + (BASE, k[4]), {})
        ratio = [r["us"] / base[r["layer"]]["us"] for r in rows if r["layer"] in base]
        rs_ = f"{min(ratio):.3f} / {gm(ratio):.3f} / {max(ratio):.3f}" if ratio and k[3] != BASE else ""
        print(f"| {cfg[0]} | {cfg[1]} | {cfg[2]} | {k[3]} | {k[4]} | {min(rates):.2f} / {gm(rates):.2f} | "
              f"{s['tbps'] if s else float('nan'):.2f} | {n95}/{len(rows)} | {n38}/{len(rows)} | {R:.2f} / {c:.1f} | {rs_} |")

PROBE_POLICY = "waves:10:pairs"
print(f"\nProbes ({PROBE_POLICY}; µs, median [min, max] over the layers): z = stream only, x = stream + math "
      "(no epilogue) of the default, x' = the same of 4x3eiclms\n")
print("| model | B | prompt | z µs | x - z | x' - z | x' - x |")
print("|---|---|---|---|---|---|---|")
for cfg in cfgs:
    g = {v: groups.get(cfg + (v, PROBE_POLICY), {}) for v in ("4x3ez", "4x3emsx", "4x3eiclmsx")}
    if not g["4x3ez"]:
        continue

    def d(a, b):
        xs = [g[a][i]["us"] - g[b][i]["us"] for i in g[a] if i in g[b]]
        return f"{med(xs):.2f} [{min(xs):.2f}, {max(xs):.2f}]" if xs else ""
    zs = [r["us"] for r in g["4x3ez"].values()]
    print(f"| {cfg[0]} | {cfg[1]} | {cfg[2]} | {med(zs):.1f} | {d('4x3emsx', '4x3ez')} | {d('4x3eiclmsx', '4x3ez')} | "
          f"{d('4x3eiclmsx', '4x3emsx')} |")

print("\nB = 4 per layer against a device copy of the same bytes (TB/s; copy = torch copy_ of the "
      "layer's bytes, half read and half written, plain graph replays; moa after the cache write, "
      "programmatic launch):")
for cfg in cfgs:
    if cfg[1] != 4:
        continue
    vs = sorted({k[3] for k in groups if k[:3] == cfg and k[4] == "auto" and not k[3].endswith(("x", "z", "y"))})
    if BASE not in vs:
        continue
    base = groups[cfg + (BASE, "auto")]
    print(f"\n{cfg[0]} B={cfg[1]} {cfg[2]}\n")
    print("| layer | MB | " + " | ".join(vs) + " | copy | SDPA same bytes | " +
          " | ".join(f"{v} / copy" for v in vs) + " |")
    print("|---|---|" + "---|" * (2 * len(vs) + 2))
    n95 = {v: 0 for v in vs}
    for li in sorted(base):
        b = base[li]
        cp = same.get((cfg[0], cfg[1], b["kv_bytes"], "copy_same_bytes"))
        sd = same.get((cfg[0], cfg[1], b["kv_bytes"], "sdpa_same_bytes"))
        cells, ratios = [], []
        for v in vs:
            r = groups[cfg + (v, "auto")].get(li)
            cells.append(f"{r['tbps']:.2f}" if r else "")
            if r and cp:
                ratios.append(f"{r['tbps'] / cp['tbps']:.2f}")
                n95[v] += r["tbps"] >= 0.95 * cp["tbps"]
            else:
                ratios.append("")
        f = lambda r: f"{r['tbps']:.2f}" if r else ""
        print(f"| {li} | {b['kv_bytes'] / 1e6:.1f} | " + " | ".join(cells) + f" | {f(cp)} | {f(sd)} | " +
              " | ".join(ratios) + " |")
    print("\nlayers >= 0.95 x copy: " + ", ".join(f"{v} {n}/{len(base)}" for v, n in n95.items()))

print("\nPer layer, time - base's (µs, default policy) and rate / 0.95 x SDPA's (B = 16):")
for cfg in cfgs:
    vs = sorted({k[3] for k in groups if k[:3] == cfg and k[4] == "auto" and k[3] != BASE
                 and not k[3].endswith(("x", "z", "y"))})
    base = groups.get(cfg + (BASE, "auto"))
    if not base or not vs:
        continue
    s = sdpa.get(cfg)
    print(f"\n{cfg[0]} B={cfg[1]} {cfg[2]}: " + "; ".join(
        f"{v}: " + " ".join(f"{li}:{groups[cfg + (v, 'auto')][li]['us'] - base[li]['us']:+.2f}"
                            for li in sorted(base) if li in groups[cfg + (v, 'auto')]) for v in vs))
    if s and cfg[1] == 16:
        for v in [BASE] + vs:
            miss = [f"{li}:{r['tbps'] / (0.95 * s['tbps']):.3f}" for li, r in sorted(groups[cfg + (v, "auto")].items())
                    if r["tbps"] < 0.95 * s["tbps"]]
            print(f"  {v} misses: {' '.join(miss) or 'none'}")

print("\nChunk sweep (µs per layer; policy: layer:µs):")
for cfg in cfgs:
    for v in sorted({k[3] for k in groups if k[:3] == cfg}):
        pols = sorted({k[4] for k in groups if k[:3] == cfg and k[3] == v})
        if len(pols) < 3:
            continue
        print(f"\n{cfg[0]} B={cfg[1]} {cfg[2]} {v}")
        for p in pols:
            rs = groups[cfg + (v, p)]
            print(f"  {p}: " + " ".join(f"{li}:{rs[li]['us']:.2f}" for li in sorted(rs)))

REPEAT = load(sys.argv[5]) if len(sys.argv) > 5 else []
if REPEAT:
    rep = {}
    for r in REPEAT:
        rep.setdefault((r["model"], r["batch"], r["prompt"], r["variant"], r.get("chunk_arg", "auto")), {})[r["layer"]] = r
    print(f"\nA/B with A/A (µs, median [min, max] over the layers; first run, then the repeat):\n")
    print(f"| model | B | prompt | variant | - {BASE} (first) | - {BASE} (repeat) | faster layers (both runs) | A/A: {BASE} repeat - first |")
    print("|---|---|---|---|---|---|---|---|")

    def rng(xs):
        return f"{med(xs):+.2f} [{min(xs):+.2f}, {max(xs):+.2f}]" if xs else ""
    for cfg in cfgs:
        b1 = groups.get(cfg + (BASE, "auto"), {})
        b2 = rep.get(cfg + (BASE, "auto"), {})
        aa = [b2[i]["us"] - b1[i]["us"] for i in b1 if i in b2]
        for v in sorted({k[3] for k in rep if k[:3] == cfg and k[3] != BASE}):
            v1 = groups.get(cfg + (v, "auto"), {})
            v2 = rep.get(cfg + (v, "auto"), {})
            d1 = [v1[i]["us"] - b1[i]["us"] for i in v1 if i in b1]
            d2 = [v2[i]["us"] - b2[i]["us"] for i in v2 if i in b2]
            both = sum(1 for i in v1 if i in b1 and i in v2 and i in b2
                       and v1[i]["us"] < b1[i]["us"] and v2[i]["us"] < b2[i]["us"])
            print(f"| {cfg[0]} | {cfg[1]} | {cfg[2]} | {v} | {rng(d1)} | {rng(d2)} | {both}/{len(d1)} | {rng(aa)} |")
