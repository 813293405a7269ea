#!/usr/bin/env python3
"""Decode call 14: kernel variants where a model runs attention (after the cache write,
programmatic launch), against dense SDPA after the same writes, in one device call.

    python3 variants.py bench.jsonl peers.jsonl [probe.jsonl [policy.jsonl]]

Per configuration and variant: read rate over the plan's KV bytes (min / geometric mean
over the 32 layers), layers at >= 0.95 x SDPA's rate and at >= 3.8 TB/s, the
least-squares fit time = bytes / R + c (c: fixed cost per launch, µs), and time against
the base variant (4x3) per layer, min / geometric mean / max. The probe (4x3ez: tiles
streamed, no math, no merge) is the floor of the same work lists' traffic. The policy
file holds other chunk policies of one variant; their time is against that variant's
`auto` rows, on the layers whose list changed.
"""
import json
import math
import sys


def load(path):
    try:
        return [json.loads(x) for x in open(path) if x.strip()]
    except OSError:
        return []


paths = sys.argv[1:] + [""] * 4
bench, peers, probe, policy = (load(p) for p in paths[:4])
sdpa = {(r["model"], r["batch"], r["prompt"]): r for r in peers if r.get("impl") == "sdpa_producer"}
sdpa_alone = {(r["model"], r["batch"], r["prompt"]): r for r in peers if r.get("impl") == "sdpa"}


def gm(xs):
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def fit(rs):
    xs = [r["kv_bytes"] / 1e6 for r in rs]
    ys = [r["us"] for r in rs]
    n = len(xs)
    if n < 2:
        return float("nan"), float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return float("nan"), float("nan")
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return 1.0 / b, my - b * mx


def group(rows):
    out = {}
    for r in rows:
        key = (r["model"], r["batch"], r["prompt"], r["variant"], r.get("chunk_arg", "auto"))
        out.setdefault(key, {})[r["layer"]] = r
    return out


g = group(bench + probe + policy)
cfgs = sorted({k[:3] for k in g}, key=lambda k: (k[0], -k[1], k[2]))
print("| model | B | prompt | variant | chunks | TB/s min / geomean | SDPA TB/s (after writes) | layers >= 0.95 x SDPA | layers >= 3.8 TB/s | fit R TB/s | fit c µs | time / 4x3 min / geomean / max |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for cfg in cfgs:
    s = sdpa.get(cfg)
    srate = s["tbps"] if s else float("nan")
    base = g.get(cfg + ("4x3", "auto"), {})
    for key in sorted((k for k in g if k[:3] == cfg), key=lambda k: (k[4] != "auto", k[3])):
        rows = g[key]
        rs = [rows[l] for l in sorted(rows)]
        rates = [r["tbps"] for r in rs]
        R, c = fit(rs)
        ok95 = sum(r["tbps"] >= 0.95 * srate for r in rs) if s else "-"
        ok38 = sum(r["tbps"] >= 3.8 for r in rs)
        q = [rows[l]["us"] / base[l]["us"] for l in rows if l in base and key[3] != "4x3ez"]
        qs = f"{min(q):.3f} / {gm(q):.3f} / {max(q):.3f}" if q and key[3:] != ("4x3", "auto") else ""
        print(f"| {cfg[0]} | {cfg[1]} | {cfg[2]} | {key[3]} | {key[4]} | {min(rates):.2f} / {gm(rates):.2f} | {srate:.2f} | {ok95}/{len(rs)} | {ok38}/{len(rs)} | {R:.2f} | {c:.1f} | {qs} |")
print()
print("SDPA dense (bf16): alone / after the producer (net), TB/s and µs")
for cfg in cfgs:
    a, p = sdpa_alone.get(cfg), sdpa.get(cfg)
    if a and p:
        print(f"- {cfg[0]} B={cfg[1]} {cfg[2]}: {a['tbps']:.2f} TB/s, {a['us']:.1f} µs / {p['tbps']:.2f} TB/s, {p['us']:.1f} µs")
print()
# Policies: per layer where the chunk changed.
for cfg in cfgs:
    for key in sorted(k for k in g if k[:3] == cfg and k[4] != "auto"):
        auto = g.get(key[:4] + ("auto",), {})
        ch = [(l, r, auto[l]) for l, r in sorted(g[key].items()) if l in auto and (r["chunk"], r["cluster"]) != (auto[l]["chunk"], auto[l]["cluster"])]
        if not ch:
            continue
        print(f"{cfg[0]} B={cfg[1]} {cfg[2]} {key[3]} {key[4]} vs auto, layers whose list changed (slots per block = plan slots / 264):")
        for l, r, a in ch:
            spb = r["kv_bytes"] / 512 / 264
            print(f"  l{l:02d} {spb:7.0f} slots/block  auto {a['chunk']}x{a['items']} c{a['cluster']} {a['tbps']:.2f} TB/s -> {r['chunk']}x{r['items']} c{r['cluster']} {r['tbps']:.2f} TB/s  time {r['us'] / a['us']:.3f}")
print()
# Per layer, B = 4 and the Llama B = 16 4k layers: every variant's TB/s.
for cfg in cfgs:
    if cfg[1] != 4 and not (cfg[0].startswith("llama") and cfg[2] == 4096):
        continue
    keys = sorted((k for k in g if k[:3] == cfg and k[4] == "auto"), key=lambda k: k[3])
    s = sdpa.get(cfg)
    print(f"{cfg[0]} B={cfg[1]} {cfg[2]} per layer TB/s ({', '.join(k[3] for k in keys)}; SDPA {s['tbps']:.2f})" if s else f"{cfg}")
    for l in sorted(g[keys[0]]):
        vals = " ".join(f"{g[k][l]['tbps']:.2f}" if l in g[k] else "-" for k in keys)
        r0 = g[keys[0]][l]
        print(f"  l{l:02d} {r0['kv_bytes'] / 1e6:6.1f} MB {r0['chunk']}x{r0['items']} c{r0['cluster']}: {vals}")
