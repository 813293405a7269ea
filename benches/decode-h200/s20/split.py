#!/usr/bin/env python3
"""Session 20, call 1: the list shapes of Llama-3-8B B = 16 4k (lists16.jsonl: chunk policies
side by side, default kernel and `v`) and the probes x / n / y / vy beside A and `v`
(probe-llama16.jsonl, probe-llama4.jsonl), as markdown.   python3 split.py CALL_DIR"""
import json
import sys
from collections import defaultdict


def rows(path):
    try:
        return [json.loads(line) for line in open(path) if line.strip()]
    except FileNotFoundError:
        return []


def main():
    d = sys.argv[1]
    t = defaultdict(dict)
    for r in rows(f"{d}/lists16.jsonl"):
        t[r["layer"]][(r["chunk_arg"], r["variant"])] = r
    pols = ["auto", "packed:2", "packed:4", "packed:8", "waves:10:pairs", "waves:10"]
    print("| layer | " + " | ".join(pols) + " |")
    print("|---|" + "---|" * len(pols))
    for layer in sorted(t):
        cells = []
        for p in pols:
            a, b = t[layer].get((p, "4x3eqmsk")), t[layer].get((p, "4x3eqmskv"))
            if a:
                kind = f"c{a['cluster']}" if a["cluster"] > 1 else "plain"
                cells.append(f"{a['items']} × ≤{a['chunk']} {kind}: {a['us']:.2f}" + (f" / v {b['us']:.2f}" if b else ""))
            else:
                cells.append("—")
        print(f"| {layer} | " + " | ".join(cells) + " |")
    print()
    print("| B | prompt | layer | list | x | n | y | y with v | full (A) | full (v) | n − x | y − n | vy − n | A − y | v − vy | v − A |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for f in ("probe-llama16.jsonl", "probe-llama4.jsonl"):
        p = defaultdict(dict)
        info = {}
        for r in rows(f"{d}/{f}"):
            k = (r["batch"], r["prompt"], r["layer"])
            p[k][r["variant"]] = r["us"]
            info[k] = f"{r['items']} × ≤{r['chunk']} " + (f"c{r['cluster']}" if r["cluster"] > 1 else "plain")
        for k in sorted(p):
            g = lambda v: p[k].get(v)
            x, n, y, vy, a, v = (g(s) for s in ("4x3eqmskx", "4x3eqmskn", "4x3eqmsky", "4x3eqmskvy", "4x3eqmsk", "4x3eqmskv"))
            f2 = lambda z: f"{z:.2f}" if z is not None else "—"
            df = lambda u, w: f"{u - w:+.2f}" if u is not None and w is not None else "—"
            print(f"| {k[0]} | {k[1]} | {k[2]} | {info[k]} | {f2(x)} | {f2(n)} | {f2(y)} | {f2(vy)} | {f2(a)} | {f2(v)} | "
                  f"{df(n, x)} | {df(y, n)} | {df(vy, n)} | {df(a, y)} | {df(v, vy)} | {df(v, a)} |")


if __name__ == "__main__":
    main()
