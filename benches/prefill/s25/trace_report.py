#!/usr/bin/env python3
"""Where `t`'s time between query tiles goes, from the clock64 trace of
`bench_prefill --trace-out` (kernels instrumented by trace_patch.py; session 23's
benches/prefill/s23/trace_report.py, with session 25's events 13 (output staged) and 14
(`P`: the previous tile's output copied out in section 0) and every warpgroup's epilogue).

    python3 trace_report.py trace.txt[.gz] [--clock-ghz 1.75]

A run is the lines of one `bench_prefill` process and layer (its block 0 / role 0 list
restarts the run). Per block, per query tile switch (consumer tile nj -> nj + 1), in SM
cycles: the round (median, over the block, of warpgroup 0's turn-to-turn time inside a
tile: one section of each warpgroup), the tile period (warpgroup 0's section-0 turns),
its excess over (sections + 1) rounds, and the path between the tiles: the producer's
last K/V tile issued (ev 24) -> next tile claimed (20) -> its Q issued (21); the last
warpgroup's last band tile landed (3) against its round-paced time (previous turn + round);
warpgroup 0's last turn (6) -> its P.V done (7) -> output written (9) -> band end
released (10) -> next tile's geometry (1) -> section 0's tile landed (11) -> its turn (2).
Medians over every switch of every traced block (the first and last two tiles left out).
"""
import argparse
import collections
import gzip
import statistics as st

ap = argparse.ArgumentParser()
ap.add_argument("trace")
ap.add_argument("--clock-ghz", type=float, default=1.75)
args = ap.parse_args()


def load(path):
    runs = []
    cur, last = None, None
    op = gzip.open if path.endswith(".gz") else open
    for line in op(path, "rt"):
        p = line.split()
        tag = tuple(p[:3])
        b, r, i, w = int(p[3]), int(p[4]), int(p[5]), int(p[6])
        if cur is None or tag != last or (b == 0 and r == 0 and i == 0):
            cur = {"tag": tag, "ev": collections.defaultdict(list)}
            runs.append(cur)
            last = tag
        cur["ev"][(b, r)].append((w >> 56, (w >> 40) & 0xFFFF, w & 0xFFFFFFFFFF))
    return runs


def med(xs):
    return st.median(xs) if xs else float("nan")


for run in load(args.trace):
    ev = run["ev"]
    blocks = sorted({b for b, _ in ev})
    rows = collections.defaultdict(list)
    for b in blocks:
        # Split each consumer list into query tiles at ev 1 (tile start).
        tiles = {}
        for r in range(3):
            cur = None
            for e, x, c in ev[(b, r)]:
                if e == 1:
                    cur = {"start": c, "turns": [], "full": []}
                    tiles.setdefault(r, []).append(cur)
                if cur is None:
                    continue
                if e == 2:
                    cur["s0"] = c
                elif e == 11:
                    cur["s0full"] = c
                elif e == 4:
                    cur["turns"].append(c)
                elif e == 3:
                    cur["full"].append(c)
                elif e in (6, 7, 9, 10, 13, 14):
                    cur[e] = c
        prod = ev[(b, 3)]
        claims = [c for e, x, c in prod if e == 20]
        qiss = [c for e, x, c in prod if e == 21]
        # The producer's last K/V issue before each claim.
        lastkv = []
        for cl in claims:
            before = [c for e, x, c in prod if e == 24 and c < cl]
            lastkv.append(before[-1] if before else None)
        t0 = tiles.get(0, [])
        t2 = tiles.get(2, [])
        rounds = [b_ - a_ for t in t0 for a_, b_ in zip(t["turns"], t["turns"][1:])]
        R = med(rounds)
        rows["round"].append(R)
        for j in range(2, min(len(t0), len(t2)) - 2):
            a, n = t0[j], t0[j + 1]
            if "s0" not in a or "s0" not in n or 6 not in a:
                continue
            period = n["s0"] - a["s0"]
            k = len(a["turns"]) + 2
            rows["period"].append(period)
            rows["sections+1"].append(k)
            rows["excess"].append(period - k * R)
            w2 = t2[j]
            if len(w2["turns"]) >= 2 and w2["full"]:
                rows["wg2 last band tile landed late"].append(w2["full"][-1] - (w2["turns"][-2] + R))
                rows["wg2 last band turn late"].append(w2["turns"][-1] - (w2["turns"][-2] + R))
            rows["wg0 last turn -> P.V done"].append(a[7] - a[6])
            rows["wg0 P.V done -> output written"].append(a[9] - a[7])
            if 13 in a:
                rows["wg0 P.V done -> output staged"].append(a[13] - a[7])
                rows["wg0 staged -> output written"].append(a[9] - a[13])
            for r_ in (1, 2):
                tr = tiles.get(r_, [])
                if j < len(tr) and 7 in tr[j] and 9 in tr[j]:
                    rows[f"wg{r_} P.V done -> output written"].append(tr[j][9] - tr[j][7])
            if 14 in n and n[14] > n["s0"]:
                rows["wg0 s0 turn -> previous output copied (P)"].append(n[14] - n["s0"])
            elif 14 in n:
                rows["wg0 geometry -> previous output copied (P)"].append(n[14] - n["start"])
            rows["wg0 output -> band end released"].append(a.get(10, a[9]) - a[9])
            rows["wg0 released -> next geometry"].append(n["start"] - a.get(10, a[9]))
            rows["wg0 geometry -> s0 tile landed"].append(n["s0full"] - n["start"])
            rows["wg0 s0 landed -> s0 turn"].append(n["s0"] - n["s0full"])
            rows["wg0 last turn -> next s0 turn"].append(n["s0"] - a[6])
            # The producer's switch: claims[i] is tile i's (producer j = consumer nj).
            if j + 1 < len(claims) and lastkv[j + 1] is not None:
                rows["prod last K/V issued -> claim"].append(claims[j + 1] - lastkv[j + 1])
                rows["prod claim -> Q issued"].append(qiss[j + 1] - claims[j + 1])
                rows["prod Q issued -> wg0 next geometry"].append(n["start"] - qiss[j + 1])
    tag = " ".join(run["tag"])
    print(f"## {tag}: {len(blocks)} blocks, {len(rows['period'])} tile switches; cycles (us at {args.clock_ghz} GHz)\n")
    print("| quantity | median cycles | us |")
    print("|---|---|---|")
    for name, xs in rows.items():
        m = med(xs)
        print(f"| {name} | {m:.0f} | {m / args.clock_ghz / 1000:.2f} |")
    print()
