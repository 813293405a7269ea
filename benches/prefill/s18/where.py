#!/usr/bin/env python3
"""Where each layer's distance to the ideal goes (no GPU): blocked.py's rows of one variant.

For every (plan, prompt, rows, layer): blocks B and 192 x 64 key tiles T the kernel visits
(the template's rule: sink tiles plus the band ending at the diagonal, every consumer
warpgroup computing the block's whole band; tiles from the row's end where the launch has
at most 43 query tiles, `f`), and the kept pairs as tile-equivalents K = kept / (192 * 64).
Fits kernel ms (moa_ms - prepass_ms) = F * B / 132 + c * T / 132 over the one-tile layers
and, apart, the persistent (`t`, narrow) layers, then splits each layer's time into
  ideal | pre-pass | fixed F*B/132 | band waste c*(T-K)/132 | rate c*K/132 - ideal | residual
and simulates the launch (132 SMs, one block each, blocks taken in `m` order, block time
F + c * tiles) for the tail: makespan over the mean SM's work.

    python3 where.py DIR [DIR ...] [--variant 3x64x1owghvuncafm] > where.md
"""
import gzip
import heapq
import json
import math
import os
import statistics as st
import sys
from collections import defaultdict

BM, BN, SMS = 192, 64, 132
NARROW = {"vicuna7b": {2, 4, *range(22, 32)}, "llama3_8b": {1, 18, 19, 21, 23, *range(25, 32)}}


def load(path):
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    if not os.path.exists(path):
        return []
    f = gzip.open(path, "rt") if path.endswith(".gz") else open(path)
    return [json.loads(l) for l in f if l.strip()]


def blocks(hsw, prompt, rows, g=4):
    """Tile count of every block in `m` launch order (pf_order: groups of g query tiles,
    pairs fastest within a group; z = 0 the longest band)."""
    nz = math.ceil(prompt / BM)
    end = nz <= math.ceil(8192 / BM)
    pairs = [(r, h) for r in range(rows) for h in range(len(hsw))]
    out = []
    for zg in range(0, nz, g):
        gz = min(g, nz - zg)
        for p in pairs:
            for z in range(zg, zg + gz):
                sink, window = hsw[p[1]]
                if end:
                    t1 = prompt - z * BM
                    t0 = max(t1 - BM, 0)
                else:
                    t0 = (nz - 1 - z) * BM
                    t1 = min(t0 + BM, prompt)
                last = (t1 - 1) // BN
                first = last + 1 if window == 0 else (t0 + 1 - window if t0 + 1 > window else 0) // BN
                sink_tiles = min((min(sink, t1) + BN - 1) // BN, first)
                out.append(sink_tiles + last + 1 - first)
    return out


def fit(rows):
    a = [[0.0, 0.0], [0.0, 0.0]]
    b = [0.0, 0.0]
    for x, y in rows:
        w = 1 / y**2
        for i in range(2):
            b[i] += w * x[i] * y
            for j in range(2):
                a[i][j] += w * x[i] * x[j]
    det = a[0][0] * a[1][1] - a[0][1] * a[1][0]
    return ((b[0] * a[1][1] - b[1] * a[0][1]) / det, (a[0][0] * b[1] - a[1][0] * b[0]) / det)


def makespan(bl, f, c):
    sm = [0.0] * SMS
    heapq.heapify(sm)
    for n in bl:
        t = heapq.heappop(sm)
        heapq.heappush(sm, t + f + c * n)
    return max(sm), sum(f + c * n for n in bl) / SMS


args = sys.argv[1:]
variant = "3x64x1owghvuncafm"
if "--variant" in args:
    i = args.index("--variant")
    variant = args[i + 1]
    args = args[:i] + args[i + 2:]
moa, sdpa = [], []
for d in args:
    moa += load(os.path.join(d, "moa.jsonl"))
    sdpa += load(os.path.join(d, "sdpa.jsonl"))
sd = defaultdict(list)
for r in sdpa:
    sd[(r["plan"], r["prompt"], r["rows"])].append(r["sdpa_ms"])
per = defaultdict(list)
for r in moa:
    if r["variant"] == variant:
        per[(r["plan"], r["prompt"], r["rows"], r["layer"])].append(r)
data = []
for key, rs in per.items():
    cfg = key[:3]
    if cfg not in sd:
        continue
    bl = blocks(rs[0]["heads_sink_window"], key[1], key[2])
    ms = st.median(x["moa_ms"] for x in rs)
    pre = st.median((x["prepass_ms"] or 0.0) for x in rs)
    share = rs[0]["kept_share"]
    causal = len(rs[0]["heads_sink_window"]) * key[2] * key[1] * (key[1] + 1) / 2
    data.append(dict(key=key, bl=bl, B=len(bl), T=sum(bl), K=share * causal / (BM * BN), ms=ms, pre=pre,
                     share=share, sdpa=st.median(sd[cfg]), narrow=key[3] in NARROW.get(key[0], ())))
print(f"# {variant}: {len(data)} layer rows\n")
fits = {}
for narrow in (False, True):
    rows = [((d["B"] / SMS, d["T"] / SMS), d["ms"] - d["pre"]) for d in data if d["narrow"] == narrow]
    if len(rows) > 2:
        fits[narrow] = fit(rows)
        res = [abs(y - (fits[narrow][0] * x[0] + fits[narrow][1] * x[1])) / y for x, y in rows]
        print(f"fit {'persistent (narrow)' if narrow else 'one-tile'} layers ({len(rows)}): F = {fits[narrow][0] * 1e3:.2f} us a block, "
              f"c = {fits[narrow][1] * 1e3:.3f} us a 192x64 tile; relative residual median {st.median(res):.3f}, max {max(res):.3f}")
for cfg in sorted(sd):
    tiles = 32 * cfg[2] * cfg[1] * (cfg[1] + 1) / 2 / (BM * BN)
    print(f"SDPA {cfg[0]} {cfg[1]} x {cfg[2]}: {st.median(sd[cfg]):.3f} ms = {st.median(sd[cfg]) * SMS / tiles * 1e3:.3f} us per 192x64 tile-equivalent of causal pairs")
print("\n| plan | prompt x rows | layer | kept share | blocks | T/K tiles | moa / ideal | pre-pass | fixed F·B | band waste c(T−K) | rate c·K − ideal | residual | tail: makespan / mean |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for d in sorted(data, key=lambda d: (d["key"][0], d["key"][1], d["key"][3])):
    f, c = fits.get(d["narrow"], (0, 0))
    ideal = d["share"] * d["sdpa"]
    fixed = f * d["B"] / SMS
    waste = c * (d["T"] - d["K"]) / SMS
    rate = c * d["K"] / SMS - ideal
    resid = d["ms"] - ideal - d["pre"] - fixed - waste - rate
    mk, mean = makespan(d["bl"], f, c) if not d["narrow"] else (1, 1)
    u = lambda x: f"{x / ideal:+.3f}"
    print(f"| {d['key'][0]} | {d['key'][1]} x {d['key'][2]} | {d['key'][3]}{' t' if d['narrow'] else ''} | {d['share']:.3f} | {d['B']} | "
          f"{d['T'] / d['K']:.3f} | {d['ms'] / ideal:.3f} | {u(d['pre'])} | {u(fixed)} | {u(waste)} | {u(rate)} | {u(resid)} | {mk / mean:.3f} |")
