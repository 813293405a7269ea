#!/usr/bin/env python3
"""Session 18's decode tables (benches/decode-h200/s18/call1.sh).

    python3 ab.py CALL_DIR

CALL_DIR holds the blocks {llama,vicuna}-{A,B}{1,2}.jsonl (A = the default, B = `k`, each
run over every layer, the blocks in the order A1 B1 A2 B2), llama4k-{A,G}{1,2}.jsonl (`g`
on Llama-3-8B at 4k), probes.jsonl (the probe runs), probe-wide.jsonl (`b`) and peers.jsonl (SDPA dense after the same writes; copy /
sum over the bytes of single cells).
1. Per configuration and kernel: TB/s over the plan's bytes (min / geometric mean), layers
   >= 0.95 x SDPA and >= 3.8 TB/s, time / A (min / geometric mean / max) in each block.
2. A/B with A/A, µs per layer: median [min, max] of B1 - A1 and B2 - A2, A2 - A1, layers
   where B is faster in both; the same on cluster and plain lists.
3. The cells under a target in any run: A, B, the target, the copy of the same bytes.
4. The probes: x, n, y, full (the default), k; n - x (the combine), y - n (the global
   stores), full - y (the arrival and merge, or the cluster exchange), full - x, k - full.
5. `g` against A at 4k (blocks) and `b` on Llama B = 4 16k layers 27 / 29.
"""
import json
import math
import statistics
import sys

A = {"llama-3-8b": "4x3eqms", "vicuna-7b": "4x3eiclms"}
K = {"llama-3-8b": "4x3eqmsk", "vicuna-7b": "4x3eiclmsk"}


def load(path):
    try:
        return [json.loads(line) for line in open(path) if line.strip()]
    except FileNotFoundError:
        return []


def index(rows):
    return {(r["model"], r["batch"], r["prompt"], r["layer"], r["variant"]): r for r in rows}


def med(xs):
    return f"{statistics.median(xs):+.2f} [{min(xs):+.2f}, {max(xs):+.2f}]" if xs else "—"


def gmean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def f2(v):
    return f"{v:.2f}" if v is not None else "—"


def main():
    d = sys.argv[1]
    blocks = {}
    for run in (1, 2):
        rows = []
        for m in ("llama", "vicuna"):
            rows += load(f"{d}/{m}-A{run}.jsonl") + load(f"{d}/{m}-B{run}.jsonl")
        blocks[run] = index(rows)
    peers = load(f"{d}/peers.jsonl")
    sdpa = {(p["model"], p["batch"], p["prompt"]): p["tbps"] for p in peers if p["impl"] == "sdpa_producer"}
    same = {}
    for p in peers:
        if p["impl"] in ("copy_same_bytes", "sum_same_bytes"):
            same[(p["model"], p["batch"], p["prompt"], p["layer"], p["impl"])] = p["us"]
    configs = sorted({k[:3] for k in blocks[1]}, key=lambda c: (c[0], -c[1], c[2]))

    print("| model | B | prompt | kernel | block | TB/s min / geomean | SDPA TB/s | >= 0.95 x SDPA | >= 3.8 TB/s | time / A min / geomean / max |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in configs:
        m = c[0]
        for v in (A[m], K[m]):
            for run in (1, 2):
                b = blocks[run]
                rs = [b[c + (l, v)] for l in range(32) if c + (l, v) in b]
                if not rs:
                    continue
                tb = [r["tbps"] for r in rs]
                s = sdpa.get(c)
                n95 = f"{sum(t >= 0.95 * s for t in tb)}/{len(tb)}" if s else "—"
                ratio = [b[c + (r["layer"], v)]["us"] / b[c + (r["layer"], A[m])]["us"]
                         for r in rs if c + (r["layer"], A[m]) in b]
                rt = "" if v == A[m] or not ratio else f"{min(ratio):.3f} / {gmean(ratio):.3f} / {max(ratio):.3f}"
                print(f"| {m} | {c[1]} | {c[2]} | {v} | {run} | {min(tb):.2f} / {gmean(tb):.2f} | {f2(s)} | "
                      f"{n95} | {sum(t >= 3.8 for t in tb)}/{len(tb)} | {rt} |")

    print()
    print("| model | B | prompt | cluster lists | k − A, block 1 | k − A, block 2 | A/A (A2 − A1) | k faster in both | k − A on cluster lists (both) | on plain lists (both) | mean k − A (1 / 2) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in configs:
        m = c[0]
        d1, d2, aa, both, cl, pl, ncl = [], [], [], 0, [], [], 0
        for l in range(32):
            k0, k1 = c + (l, A[m]), c + (l, K[m])
            if k0 not in blocks[1] or k1 not in blocks[1]:
                continue
            x = blocks[1][k1]["us"] - blocks[1][k0]["us"]
            d1.append(x)
            clus = blocks[1][k0]["cluster"] > 1
            ncl += clus
            (cl if clus else pl).append(x)
            if k0 in blocks[2] and k1 in blocks[2]:
                y = blocks[2][k1]["us"] - blocks[2][k0]["us"]
                d2.append(y)
                (cl if clus else pl).append(y)
                aa.append(blocks[2][k0]["us"] - blocks[1][k0]["us"])
                both += x < 0 and y < 0
        mean = lambda xs: f"{sum(xs) / len(xs):+.3f}" if xs else "—"
        print(f"| {m} | {c[1]} | {c[2]} | {ncl} | {med(d1)} | {med(d2)} | {med(aa)} | {both}/{len(d2)} | "
              f"{med(cl)} | {med(pl)} | {mean(d1)} / {mean(d2)} |")

    print()
    print("| model | B | prompt | layer | MB | list | target µs | A µs (1 / 2) | k µs (1 / 2) | copy µs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in configs:
        m = c[0]
        s = sdpa.get(c)
        if c[1] == 16 and not s:
            continue
        bar = 0.95 * s if c[1] == 16 else 3.8
        if c[:3] == ("llama-3-8b", 4, 4096):
            continue  # out of reach: a copy of the same bytes reads 3.10-3.78 TB/s
        for l in range(32):
            k0, k1 = c + (l, A[m]), c + (l, K[m])
            if k0 not in blocks[1]:
                continue
            r = blocks[1][k0]
            need = r["kv_bytes"] / (bar * 1e6)
            ra = [b[k0]["us"] for b in blocks.values() if k0 in b]
            rk = [b[k1]["us"] for b in blocks.values() if k1 in b]
            if max(ra + rk) <= need:
                continue
            lst = f"{r['items']} × ≤{r['chunk']}, cl {r['cluster']}"
            print(f"| {m} | {c[1]} | {c[2]} | {l} | {r['kv_bytes'] / 1e6:.1f} | {lst} | {need:.2f} | "
                  f"{' / '.join(f'{v:.2f}' for v in ra)} | {' / '.join(f'{v:.2f}' for v in rk)} | "
                  f"{f2(same.get(c + (l, 'copy_same_bytes')))} |")

    probes = index(load(f"{d}/probes.jsonl"))
    print()
    print("| model | B | prompt | layer | MB | list | x µs | n µs | y µs | full µs | k µs | copy µs | n − x (combine) | y − n (stores) | full − y (merge / exchange) | full − x | k − full |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted({k[:4] for k in probes}, key=lambda k: (k[0], -k[1], k[2], k[3])):
        m = key[0]
        x, n, y, full = (probes.get(key + (A[m] + s,)) for s in ("x", "n", "y", ""))
        k = probes.get(key + (K[m],))
        if not (x and n and y and full):
            continue
        u = lambda r: r["us"] if r else None
        dd = lambda p, q: f"{p - q:+.2f}" if p is not None and q is not None else "—"
        print(f"| {m} | {key[1]} | {key[2]} | {key[3]} | {full['kv_bytes'] / 1e6:.1f} | "
              f"{full['items']} × ≤{full['chunk']}, cl {full['cluster']} | {x['us']:.2f} | {n['us']:.2f} | "
              f"{y['us']:.2f} | {full['us']:.2f} | {f2(u(k))} | {f2(same.get(key + ('copy_same_bytes',)))} | "
              f"{dd(n['us'], x['us'])} | {dd(y['us'], n['us'])} | {dd(full['us'], y['us'])} | "
              f"{dd(full['us'], x['us'])} | {dd(u(k), full['us'])} |")

    print()
    g = {run: index(load(f"{d}/llama4k-A{run}.jsonl") + load(f"{d}/llama4k-G{run}.jsonl")) for run in (1, 2)}
    print("| model | B | prompt | g − A on cluster lists, block 1 | block 2 | on plain lists (both) | A/A (A2 − A1) | g faster in both |")
    print("|---|---|---|---|---|---|---|---|")
    for c in sorted({k[:3] for k in g[1]}, key=lambda c: -c[1]):
        c1, c2, pl, aa, both = [], [], [], [], 0
        for l in range(32):
            k0, k1 = c + (l, "4x3eqms"), c + (l, "4x3eqmsg")
            if k0 not in g[1] or k1 not in g[1]:
                continue
            x = g[1][k1]["us"] - g[1][k0]["us"]
            y = g[2][k1]["us"] - g[2][k0]["us"] if k0 in g[2] and k1 in g[2] else None
            if g[1][k0]["cluster"] > 1:
                c1.append(x)
                if y is not None:
                    c2.append(y)
            else:
                pl += [x] + ([y] if y is not None else [])
            if y is not None:
                aa.append(g[2][k0]["us"] - g[1][k0]["us"])
                both += x < 0 and y < 0
        print(f"| llama-3-8b | {c[1]} | {c[2]} | {med(c1)} | {med(c2)} | {med(pl)} | {med(aa)} | {both}/{len(aa)} |")

    print()
    print("| layer | MB | list | default µs | b µs | k µs | kb µs | b − default | kb − k |")
    print("|---|---|---|---|---|---|---|---|---|")
    wide = index(load(f"{d}/probe-wide.jsonl"))
    for l in (27, 29):
        key = ("llama-3-8b", 4, 16384, l)
        r = [wide.get(key + (v,)) for v in ("4x3eqms", "4x3eqmsb", "4x3eqmsk", "4x3eqmskb")]
        if not all(r):
            continue
        print(f"| {l} | {r[0]['kv_bytes'] / 1e6:.1f} | {r[0]['items']} × ≤{r[0]['chunk']}, cl {r[0]['cluster']} | "
              f"{r[0]['us']:.2f} | {r[1]['us']:.2f} | {r[2]['us']:.2f} | {r[3]['us']:.2f} | "
              f"{r[1]['us'] - r[0]['us']:+.2f} | {r[3]['us'] - r[2]['us']:+.2f} |")


if __name__ == "__main__":
    main()
