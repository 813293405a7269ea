#!/usr/bin/env python3
"""Decode call 16 tables: chunk policies against the runtime's (`auto`), the probes, dense
SDPA in the same position, and plain reads of the same bytes.

    python3 tables.py bench.jsonl peers.jsonl probe.jsonl

Per configuration and policy (variant 4x3em): read rate over the plan's KV bytes (min /
geometric mean over the 32 layers), layers >= 0.95 x SDPA's rate (after the same writes)
and >= 3.8 TB/s, the fit time = bytes / R + c, and time / auto on the layers whose list
changed (min / geometric mean / max, count). Then "best": per layer the fastest of the
policies. For B = 4: per layer the byte count, moa (auto and best), the probes (z: stream
only, y: no merge) and SDPA dense, a copy and a sum over the same bytes (TB/s).
"""
import json
import math
import sys


def load(path):
    try:
        return [json.loads(x) for x in open(path) if x.strip()]
    except OSError:
        return []


bench, peers, probe = (load(p) for p in (sys.argv[1:] + ["", "", ""])[:3])
sdpa = {(r["model"], r["batch"], r["prompt"]): r for r in peers if r.get("impl") == "sdpa_producer"}
same = {}
for r in peers:
    if r.get("impl", "").endswith("_same_bytes"):
        same[(r["model"], r["batch"], r["kv_bytes"], r["impl"])] = r


def gm(xs):
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


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
    key = (r["model"], r["batch"], r["prompt"], r["variant"] + ("" if r["variant"] == "4x3em" else "") ,
           r.get("chunk_arg", "auto"))
    groups.setdefault(key, {})[r["layer"]] = r
cfgs = sorted({k[:3] for k in groups}, key=lambda k: (k[0], -k[1], k[2]))
print("| model | B | prompt | variant | policy | TB/s min / geomean | SDPA TB/s | >= 0.95 SDPA | >= 3.8 | fit R / c µs | time / auto on changed layers (n) |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for cfg in cfgs:
    s = sdpa.get(cfg)
    base = groups.get(cfg + ("4x3em", "auto"), {})
    keys = sorted(k for k in groups if k[:3] == cfg)
    best = {}
    for k in keys:
        rs = groups[k]
        if k[3] == "4x3em":
            for li, r in rs.items():
                if li not in best or r["us"] < best[li]["us"]:
                    best[li] = r
    for k in keys + [cfg + ("4x3em", "best")]:
        rs = groups[k] if k[4] != "best" else best
        if not rs:
            continue
        rows = [rs[i] for i in sorted(rs)]
        rates = [r["tbps"] for r in rows]
        n95 = sum(1 for r in rows if s and r["tbps"] >= 0.95 * s["tbps"])
        n38 = sum(1 for r in rows if r["tbps"] >= 3.8)
        R, c = fit(rows)
        ch = [r["us"] / base[r["layer"]]["us"] for r in rows
              if r["layer"] in base and (r.get("items"), r.get("chunk"), r.get("cluster"), r.get("packed"))
              != (base[r["layer"]].get("items"), base[r["layer"]].get("chunk"), base[r["layer"]].get("cluster"),
                  base[r["layer"]].get("packed"))]
        chs = f"{min(ch):.3f} / {gm(ch):.3f} / {max(ch):.3f} ({len(ch)})" if ch and k[3] == "4x3em" else ""
        print(f"| {cfg[0]} | {cfg[1]} | {cfg[2]} | {k[3]} | {k[4]} | {min(rates):.2f} / {gm(rates):.2f} | "
              f"{s['tbps'] if s else float('nan'):.2f} | {n95}/{len(rows)} | {n38}/{len(rows)} | {R:.2f} / {c:.1f} | {chs} |")
print()
print("Per layer, B = 4 (TB/s over the plan's bytes; same-bytes peers over the same byte count):")
for cfg in cfgs:
    if cfg[1] != 4:
        continue
    auto = groups.get(cfg + ("4x3em", "auto"), {})
    z = groups.get(cfg + ("4x3ez", "auto"), {})
    y = groups.get(cfg + ("4x3emy", "auto"), {})
    pols = sorted(k[4] for k in groups if k[:4] == cfg + ("4x3em",))
    print(f"\n{cfg[0]} B={cfg[1]} {cfg[2]}\n")
    print("| layer | MB | auto | " + " | ".join(p for p in pols if p != "auto") +
          " | best | z | y | SDPA same bytes | copy same bytes | sum same bytes |")
    print("|---|---|---|" + "---|" * (len(pols) - 1) + "---|---|---|---|---|---|")
    for li in sorted(auto):
        a = auto[li]
        cells = []
        bst = a
        for p in pols:
            if p == "auto":
                continue
            r = groups[cfg + ("4x3em", p)].get(li)
            if r and r["us"] < bst["us"]:
                bst = r
            cells.append(f"{r['tbps']:.2f}" + (f" c{r['cluster']}{'p' if r.get('packed') else ''}" if r and r["cluster"] > 1 else "") if r else "")
        sb = [same.get((cfg[0], cfg[1], a["kv_bytes"], i)) for i in ("sdpa_same_bytes", "copy_same_bytes", "sum_same_bytes")]
        f = lambda r: f"{r['tbps']:.2f}" if r else ""
        print(f"| {li} | {a['kv_bytes'] / 1e6:.1f} | {a['tbps']:.2f} | " + " | ".join(cells) +
              f" | {bst['tbps']:.2f} | {f(z.get(li))} | {f(y.get(li))} | " + " | ".join(f(r) for r in sb) + " |")
