#!/usr/bin/env python3
"""Chunk policies side by side (benches/decode-h200/run7.sh): attention_bench JSON lines
timed with several `--chunks` in one run, and decode_peers.py's SDPA lines of the same
call. Per configuration and policy: read rate min / geometric mean, layers at ≥ 0.95 ×
SDPA's rate, layers at ≥ 3.8 TB/s, and time against the first policy (`--base`) per layer
min / geometric mean / max. Then one row per layer for each configuration given with
`--layers-of MODEL:B:PROMPT` (chunk, items, TB/s and ratio to SDPA per policy).

    python3 benches/decode-h200/policies.py bench.jsonl peers.jsonl --base waves:2 \\
        --layers-of llama-3-8b:16:4096
"""
import argparse
import json
import math

ap = argparse.ArgumentParser()
ap.add_argument("bench")
ap.add_argument("peers")
ap.add_argument("--base", default="waves:2")
ap.add_argument("--layers-of", action="append", default=[])
a = ap.parse_args()
rows = [json.loads(l) for l in open(a.bench) if l.strip()]
rows = [r for r in rows if r.get("launch", "plain") == "plain"]
peers = [json.loads(l) for l in open(a.peers) if l.strip()] if a.peers != "-" else []
sdpa = {(r["model"], r["batch"], r["prompt"]): r["tbps"] for r in peers if r["impl"] == "sdpa"}
by = {}
for r in rows:
    by.setdefault((r["model"], r["batch"], r["prompt"]), {}).setdefault(r["chunk_arg"], {})[r["layer"]] = r
gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))
print("| model | B | prompt | policy | TB/s min / geomean | SDPA TB/s | layers ≥ 0.95 × SDPA | layers ≥ 3.8 TB/s | time / base min / geomean / max |")
print("|---|---|---|---|---|---|---|---|---|")
for cfg in sorted(by, key=lambda c: (c[0], -c[1], c[2])):
    pols = by[cfg]
    base = pols.get(a.base, {})
    s = sdpa.get(cfg)
    for p, lay in pols.items():
        t = [r["tbps"] for r in lay.values()]
        ok = f"{sum(x >= 0.95 * s for x in t)}/{len(t)}" if s else "–"
        common = [l for l in lay if l in base]
        rel = [lay[l]["us"] / base[l]["us"] for l in common]
        relc = f"{min(rel):.3f} / {gm(rel):.3f} / {max(rel):.3f}" if rel else "–"
        print(f"| {cfg[0]} | {cfg[1]} | {cfg[2]} | {p} | {min(t):.2f} / {gm(t):.2f} | "
              f"{s:.2f} | {ok} | {sum(x >= 3.8 for x in t)}/{len(t)} | {relc} |" if s else
              f"| {cfg[0]} | {cfg[1]} | {cfg[2]} | {p} | {min(t):.2f} / {gm(t):.2f} | – | {ok} | "
              f"{sum(x >= 3.8 for x in t)}/{len(t)} | {relc} |")
for spec in a.layers_of:
    m, b, p = spec.split(":")
    cfg = (m, int(b), int(p))
    if cfg not in by:
        continue
    pols = list(by[cfg])
    s = sdpa.get(cfg)
    print(f"\n{m} B={b} prompt {p}: chunk × items, TB/s (/ SDPA {s:.2f} TB/s)" if s else f"\n{m} B={b} prompt {p}")
    print("| layer | " + " | ".join(pols) + " |")
    print("|---|" + "---|" * len(pols))
    for l in sorted(by[cfg][pols[0]]):
        cells = []
        for q in pols:
            r = by[cfg][q].get(l)
            cells.append(f"{r['chunk']}×{r['items']} {r['tbps']:.2f}" + (f" ({r['tbps'] / s:.2f})" if s else "") if r else "–")
        print(f"| {l} | " + " | ".join(cells) + " |")
