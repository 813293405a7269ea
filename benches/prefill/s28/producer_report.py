#!/usr/bin/env python3
"""The producer's K/V copies around a query-tile switch in session 28's clock64 traces
(benches/prefill/s28/trace_patch.py; the format of s25/trace_report.py): for each variant, the
median gap (SM cycles) between consecutive K/V hand-overs (event 24, tile index x) by the
tile's position from the query tile's end (x = n - 1 last), the producer's wait for each
tile's ring slot (event 24 to the next 23) and the issue and wait after it (23 to 24), the
time from the second-to-last
hand-over to thread 0's `claim_next` (event 22, `N` only), and from the last K/V hand-over
(24, x = n - 1) to the next tile's first slot wait / hand-over (23 / 24, x = 0).

    python3 producer_report.py trace.txt.gz > producer.md
"""
import collections
import gzip
import statistics as st
import sys


def load(path):
    runs, cur, last = [], None, None
    for line in gzip.open(path, "rt") if path.endswith(".gz") else open(path):
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
    return f"{st.median(xs):.0f} ({len(xs)})" if xs else "-"


for run in load(sys.argv[1]):
    rows = collections.defaultdict(list)
    for (b, r), evs in run["ev"].items():
        if r != 3:
            continue
        # Split the producer's events into query tiles at each claim (20).
        tiles, cur = [], None
        for e, x, c in evs:
            if e == 20:
                cur = {"claim": c, "h": {}, "w": {}, "c22": None}
                tiles.append(cur)
            elif cur is not None:
                if e == 24:
                    cur["h"][x] = c
                elif e == 23:
                    cur["w"].setdefault(x, c)
                elif e == 22:
                    cur["c22"] = c
        # With N the claim (20) of tile j + 1 comes after tile j's K/V copies: tile j's
        # copies are in tiles[j] for N only if 20 precedes them; both forms issue tile j's
        # K/V after its own claim (DEF) or after tile j's claim in the previous tile (N),
        # so group the hand-overs by the last claim before them either way.
        for t, nxt in zip(tiles, tiles[1:]):
            h = t["h"]
            if not h:
                continue
            n = max(h) + 1
            for k in range(1, min(n, 6)):
                if n - k - 1 in h:
                    rows[f"hand-over gap, K/V tile n-{k} after n-{k + 1}"].append(h[n - k] - h[n - k - 1])
            w = t["w"]
            for k in range(1, 7):
                x = n - k
                # The producer's slack: from a hand-over to the next tile's ring slot being
                # free (thread 0 waiting), and from the slot free to the next hand-over
                # (the copies' issue, then the wait for the tile before to land).
                if x in w and x - 1 in h:
                    rows[f"slot wait: 24(n-{k + 1}) -> slot free 23(n-{k})"].append(w[x] - h[x - 1])
                if x in w and x in h:
                    rows[f"issue + land: slot free 23(n-{k}) -> 24(n-{k})"].append(h[x] - w[x])
            if t["c22"] is not None and n - 2 in h:
                rows["N: hand-over n-2 -> thread 0's claim_next done"].append(t["c22"] - h[n - 2])
            if 0 in nxt["h"]:
                rows["last hand-over -> next tile's first hand-over"].append(nxt["h"][0] - h[n - 1])
    print(f"## {' '.join(run['tag'])}\n")
    print("| quantity | median cycles (n) |")
    print("|---|---|")
    for k in sorted(rows):
        print(f"| {k} | {med(rows[k])} |")
    print()
