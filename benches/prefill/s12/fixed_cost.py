#!/usr/bin/env python3
"""Where a layer's prefill time goes, from a bench_prefill rounds file (no GPU needed).

For every (plan, prompt, rows, layer) row of one variant it counts the kernel's blocks B
and the K/V tiles T they visit (the template's tile rule: sink tiles plus the band ending
at the diagonal, BM = 64 x warpgroups query rows, 64-key tiles), and fits

    kernel ms (moa_ms - prepass_ms) = K + F * B / 132 + c * T / 132

over every row (weighted by 1 / time^2, i.e. relative error): F is the per-block fixed
cost, c the cost of a tile, both per SM (132 SMs, one block per SM). It then prints the
worst rows with their time split into pre-pass, F * B / 132, c * T / 132, and the tiles
computed against the kept pairs (in 64 x 64 tiles x warpgroups). F and K separate only
with rows of other block counts than the upstream plans' (the dense plans at 4k x 1 and
16k x 4): every upstream configuration has about 2800 blocks.

usage: fixed_cost.py ROUNDS.jsonl[.gz] PEERS.jsonl[.gz] [VARIANT]
"""
import gzip, json, math, statistics as st, sys
from collections import defaultdict


def load(path):
    f = gzip.open(path, "rt") if path.endswith(".gz") else open(path)
    return [json.loads(l) for l in f if l.strip()]


def tiles_per_block(hsw, prompt, rows, bm, bn=64):
    """n_tiles of every block in launch order (templates/cuda/prefill.cu.j2)."""
    z = math.ceil(prompt / bm)
    out = []
    for zz in range(z):
        t0 = (z - 1 - zz) * bm
        t1 = min(t0 + bm, prompt)
        for _ in range(rows):
            for sink, window in hsw:
                last = (t1 - 1) // bn
                first = last + 1 if window == 0 else (t0 + 1 - window if t0 + 1 > window else 0) // bn
                sink_tiles = min((min(sink, t1) + bn - 1) // bn, first)
                out.append(sink_tiles + last + 1 - first)
    return out


def solve(a, b):
    n = len(b)
    m = [a[i][:] + [b[i]] for i in range(n)]
    for i in range(n):
        p = max(range(i, n), key=lambda r: abs(m[r][i]))
        m[i], m[p] = m[p], m[i]
        for r in range(n):
            if r != i:
                f = m[r][i] / m[i][i]
                for c in range(i, n + 1):
                    m[r][c] -= f * m[i][c]
    return [m[i][n] / m[i][i] for i in range(n)]


def main():
    rounds, peers = load(sys.argv[1]), load(sys.argv[2])
    variant = sys.argv[3] if len(sys.argv) > 3 else "3x64x1owghvunc"
    bm = int(variant[0]) * 64
    wgs = int(variant[0])
    dense = {(p["plan"], p["prompt"], p["rows"]): p["dense_ms"] for p in peers}
    groups = defaultdict(list)
    for r in rounds:
        if r["variant"] == variant:
            groups[(r["plan"], r["prompt"], r["rows"], r["layer"])].append(r)
    data = []
    for key, rs in groups.items():
        ms = st.median(x["moa_ms"] for x in rs)
        pre = st.median((x["prepass_ms"] or 0.0) for x in rs)
        blocks = tiles_per_block(rs[0]["heads_sink_window"], key[1], key[2], bm)
        data.append((key, ms, pre, blocks, rs[0]["kept_share"], len(rs[0]["heads_sink_window"])))
    a = [[0.0] * 3 for _ in range(3)]
    b = [0.0] * 3
    for key, ms, pre, bl, share, heads in data:
        x = (1.0, len(bl) / 132, sum(bl) / 132)
        y = ms - pre
        w = 1 / y**2
        for i in range(3):
            b[i] += w * x[i] * y
            for j in range(3):
                a[i][j] += w * x[i] * x[j]
    k, f, c = solve(a, b)
    print(f"{variant}: {len(data)} rows; K = {k * 1e3:.1f} us, F = {f * 1e3:.2f} us per block, "
          f"c = {c * 1e3:.3f} us per tile (per SM)")
    rows = []
    for key, ms, pre, bl, share, heads in data:
        ideal = share * dense.get(key[:3], float("nan"))
        kept = share * heads * key[2] * key[1] * (key[1] + 1) / 2 / (64 * 64)
        rows.append((ms / ideal, key, ms, pre, f * len(bl) / 132, c * sum(bl) / 132, sum(bl) * wgs / kept, ideal))
    rows.sort(reverse=True)
    print("| plan | prompt x rows | layer | moa / ideal | ms | pre-pass | F part | tile part | tiles / kept | ideal ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for q, key, ms, pre, fp, cp, waste, ideal in rows[: int(sys.argv[4]) if len(sys.argv) > 4 else 12]:
        print(f"| {key[0]} | {key[1]} x {key[2]} | {key[3]} | {q:.2f} | {ms:.3f} | {pre:.3f} | {fp:.3f} | {cp:.3f} | {waste:.2f} | {ideal:.3f} |")


if __name__ == "__main__":
    main()
