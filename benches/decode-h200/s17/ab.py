#!/usr/bin/env python3
"""Session 17's decode tables (benches/decode-h200/s17/call1.sh): the letter `o` against
each model's default, with an A/A repeat, the probes and the same-bytes peers.

    python3 ab.py CALL_DIR

CALL_DIR holds bench.jsonl (first run: default then `o`), repeat-llama.jsonl and
repeat-vicuna.jsonl (the same, reverse order), peers.jsonl (SDPA dense after the same
writes; copy / sum / SDPA over the bytes of the probed cells), probe-*.jsonl.
1. Per configuration and kernel: TB/s over the plan's bytes (min / geometric mean), layers
   >= 0.95 x SDPA and >= 3.8 TB/s, in the first run and the repeat.
2. A/B with A/A, µs per layer: median [min, max] of `o` - default in each run; the
   default's repeat - first; layers where `o` is faster in both runs.
3. The missing cells (either run): default, `o`, the target, and a device copy / sum of the
   same bytes where the peers timed it.
4. The probes (their own run, same lists): z (stream only), x (stream + math, no
   epilogue), the full default and `o` in that run; x − z (the math) and full − x (what
   comes after the last tile: the warps' combine, the partial / cluster exchange, the merge,
   the O stores).
"""
import json
import math
import statistics
import sys

BASE = {"llama-3-8b": "4x3eqms", "vicuna-7b": "4x3eiclms"}
NEW = {"llama-3-8b": "4x3eqmso", "vicuna-7b": "4x3eiclmso"}


def load(path):
    try:
        return [json.loads(line) for line in open(path) if line.strip()]
    except FileNotFoundError:
        return []


def index(rows):
    return {(r["model"], r["batch"], r["prompt"], r["layer"], r["variant"]): r for r in rows}


def med(xs):
    return f"{statistics.median(xs):+.2f} [{min(xs):+.2f}, {max(xs):+.2f}]" if xs else "—"


def main():
    d = sys.argv[1]
    first = index(load(f"{d}/bench.jsonl"))
    rep = index(load(f"{d}/repeat-llama.jsonl") + load(f"{d}/repeat-vicuna.jsonl"))
    peers = load(f"{d}/peers.jsonl")
    sdpa = {(p["model"], p["batch"], p["prompt"]): p["tbps"] for p in peers if p["impl"] == "sdpa_producer"}
    same = {}
    for p in peers:
        if p["impl"] in ("copy_same_bytes", "sum_same_bytes"):
            same[(p["model"], p["batch"], p["prompt"], p["layer"], p["impl"])] = p["us"]
    probes = index(load(f"{d}/probe-llama16.jsonl") + load(f"{d}/probe-llama4.jsonl") + load(f"{d}/probe-vicuna4.jsonl"))
    configs = sorted({k[:3] for k in first}, key=lambda c: (c[0], -c[1], c[2]))

    print("| model | B | prompt | kernel | run | TB/s min / geomean | SDPA TB/s | >= 0.95 x SDPA | >= 3.8 TB/s | time / default min / geomean / max |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in configs:
        m = c[0]
        for v in (BASE[m], NEW[m]):
            for name, run in (("first", first), ("repeat", rep)):
                rs = [run[c + (l, v)] for l in range(32) if c + (l, v) in run]
                if not rs:
                    continue
                tb = [r["tbps"] for r in rs]
                bar = 0.95 * sdpa[c]
                ratio = [run[c + (r["layer"], v)]["us"] / run[c + (r["layer"], BASE[m])]["us"] for r in rs]
                gm = math.exp(sum(math.log(x) for x in ratio) / len(ratio))
                rt = "" if v == BASE[m] else f"{min(ratio):.3f} / {gm:.3f} / {max(ratio):.3f}"
                print(f"| {m} | {c[1]} | {c[2]} | {v} | {name} | {min(tb):.2f} / "
                      f"{math.exp(sum(math.log(x) for x in tb) / len(tb)):.2f} | {sdpa[c]:.2f} | "
                      f"{sum(t >= bar for t in tb)}/{len(tb)} | {sum(t >= 3.8 for t in tb)}/{len(tb)} | {rt} |")

    print()
    print("| model | B | prompt | clusters (layers) | o − default, first | o − default, repeat | A/A (default repeat − first) | o faster in both | o − default on cluster lists (both runs) | on plain lists (both runs) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in configs:
        m = c[0]
        a, b, aa, both, cl, pl = [], [], [], 0, [], []
        ncl = 0
        for l in range(32):
            k0, k1 = c + (l, BASE[m]), c + (l, NEW[m])
            if k0 not in first or k1 not in first:
                continue
            x = first[k1]["us"] - first[k0]["us"]
            a.append(x)
            clus = first[k0]["cluster"] > 1
            ncl += clus
            (cl if clus else pl).append(x)
            if k0 in rep and k1 in rep:
                y = rep[k1]["us"] - rep[k0]["us"]
                b.append(y)
                (cl if clus else pl).append(y)
                aa.append(rep[k0]["us"] - first[k0]["us"])
                both += x < 0 and y < 0
        print(f"| {m} | {c[1]} | {c[2]} | {ncl} | {med(a)} | {med(b)} | {med(aa)} | {both}/{len(b)} | {med(cl)} | {med(pl)} |")

    print()
    print("| model | B | prompt | layer | MB | list | target µs | default µs (first / repeat) | o µs (first / repeat) | copy µs | sum µs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in configs:
        m = c[0]
        bar = 0.95 * sdpa[c] if c[1] == 16 else 3.8
        for l in range(32):
            k0, k1 = c + (l, BASE[m]), c + (l, NEW[m])
            if k0 not in first:
                continue
            r = first[k0]
            need = r["kv_bytes"] / (bar * 1e6)
            runs0 = [x[k0]["us"] for x in (first, rep) if k0 in x]
            runs1 = [x[k1]["us"] for x in (first, rep) if k1 in x]
            if min(runs0 + runs1) <= need and max(runs0) <= need:
                continue
            cp = same.get(c + (l, "copy_same_bytes"))
            sm = same.get(c + (l, "sum_same_bytes"))
            f = lambda v: f"{v:.2f}" if v is not None else "—"
            lst = f"{r['items']} × ≤{r['chunk']}, cl {r['cluster']}"
            print(f"| {m} | {c[1]} | {c[2]} | {l} | {r['kv_bytes'] / 1e6:.1f} | {lst} | {need:.2f} | "
                  f"{' / '.join(f'{v:.2f}' for v in runs0)} | {' / '.join(f'{v:.2f}' for v in runs1)} | "
                  f"{f(cp)} | {f(sm)} |")

    print()
    print("| model | B | prompt | layer | MB | list | z µs | x µs | full µs | o µs | copy µs | sum µs | z − copy | x − z | full − x |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for k in sorted({k[:4] for k in probes}, key=lambda k: (k[0], -k[1], k[2], k[3])):
        m = k[0]
        z, x, full = (probes.get(k + (BASE[m] + s,)) for s in ("z", "x", ""))
        o = probes.get(k + (NEW[m],))
        if not (z and x and full):
            continue
        cp = same.get(k + ("copy_same_bytes",))
        sm = same.get(k + ("sum_same_bytes",))
        f = lambda v: f"{v:.2f}" if v is not None else "—"
        print(f"| {m} | {k[1]} | {k[2]} | {k[3]} | {full['kv_bytes'] / 1e6:.1f} | {full['items']} × ≤{full['chunk']}, cl {full['cluster']} | "
              f"{z['us']:.2f} | {x['us']:.2f} | {full['us']:.2f} | {f(o['us'] if o else None)} | {f(cp)} | {f(sm)} | "
              f"{f(z['us'] - cp if cp else None)} | {x['us'] - z['us']:.2f} | {full['us'] - x['us']:.2f} |")


if __name__ == "__main__":
    main()
