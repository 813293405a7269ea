#!/usr/bin/env python3
"""The persistent (`t`) blocks' timeline on the GPU's global clock, from the trace of
`bench_prefill --trace-out` with kernels instrumented by benches/prefill/s30/i8/trace_patch.py
(events 30 producer start, 31 query tile claimed (x = j), 32 producer end, 33 a consumer
warpgroup's exit (x = query tiles run); %globaltimer's low 40 bits, ns).

    python3 tail_report.py trace.txt[.gz]          # markdown on stdout
    python3 tail_report.py --strip trace.txt.gz    # the trace without events >= 30 (for trace_report.py)

Per run (one variant, one layer): the launch's span (first producer start -> last consumer
exit), each block's end (its last consumer exit) against the launch's end, the query tiles
per block, the claim-to-claim time of a tile (median), and the imbalance: 1 - the blocks'
mean busy time (start -> end) / the span (what a perfectly balanced launch would save).
"""
import collections
import gzip
import statistics as st
import sys


def lines(path):
    op = gzip.open if path.endswith(".gz") else open
    return op(path, "rt")


if sys.argv[1] == "--strip":
    for line in lines(sys.argv[2]):
        if int(line.split()[6]) >> 56 < 30:
            sys.stdout.write(line)
    sys.exit(0)

runs = []
cur, last = None, None
for line in lines(sys.argv[1]):
    p = line.split()
    tag = tuple(p[:3])
    b, r, i, w = int(p[3]), int(p[4]), int(p[5]), int(p[6])
    if cur is None or tag != last or (b == 0 and r == 0 and i == 0):
        cur = {"tag": tag, "ev": collections.defaultdict(list)}
        runs.append(cur)
        last = tag
    e = w >> 56
    if e >= 30:
        cur["ev"][b].append((e, r, (w >> 40) & 0xFFFF, w & 0xFFFFFFFFFF))

for run in runs:
    ev = run["ev"]
    if not ev:
        continue
    blocks = sorted(ev)
    start = {b: min(t for e, r, x, t in ev[b] if e == 30) for b in blocks if any(e == 30 for e, *_ in ev[b])}
    end = {b: max(t for e, r, x, t in ev[b] if e == 33) for b in blocks if any(e == 33 for e, *_ in ev[b])}
    tiles = {b: max(x for e, r, x, t in ev[b] if e == 33) for b in end}
    claims = {b: sorted(t for e, r, x, t in ev[b] if e == 31) for b in blocks}
    t0 = min(start.values())
    t1 = max(end.values())
    span = t1 - t0
    ends = sorted(t1 - end[b] for b in end)  # ns before the launch's end
    busy = [end[b] - start[b] for b in end if b in start]
    per_tile = [c2 - c1 for b in claims for c1, c2 in zip(claims[b], claims[b][1:])]
    last_claim = sorted(t1 - claims[b][-2] for b in claims if len(claims[b]) > 1)  # [-1]: the claim that found none
    starts = sorted(start[b] - t0 for b in start)
    hist = collections.Counter(tiles.values())
    print(f"## {' '.join(run['tag'])}: {len(blocks)} blocks\n")
    print("| quantity | value |\n|---|---|")
    print(f"| launch span (first producer start -> last consumer exit) | {span / 1e3:.1f} us |")
    print(f"| block starts after the first: median, max | {st.median(starts) / 1e3:.2f}, {starts[-1] / 1e3:.2f} us |")
    print(f"| query tiles per block (count of blocks) | {', '.join(f'{k}: {v}' for k, v in sorted(hist.items()))} |")
    print(f"| claim -> next claim (a query tile), median (p10-p90) | {st.median(per_tile) / 1e3:.2f} ({st.quantiles(per_tile, n=10)[0] / 1e3:.2f}-{st.quantiles(per_tile, n=10)[-1] / 1e3:.2f}) us |")
    print(f"| block end before the launch's end: min, p10, median, p90, max | {ends[0] / 1e3:.2f}, {st.quantiles(ends, n=10)[0] / 1e3:.2f}, {st.median(ends) / 1e3:.2f}, {st.quantiles(ends, n=10)[-1] / 1e3:.2f}, {ends[-1] / 1e3:.2f} us |")
    print(f"| a block's last tile claimed, before the launch's end: min, median, max | {last_claim[0] / 1e3:.2f}, {st.median(last_claim) / 1e3:.2f}, {last_claim[-1] / 1e3:.2f} us |")
    print(f"| blocks' mean busy (start -> end) / span; imbalance 1 - that | {st.mean(busy) / span:.4f}; {1 - st.mean(busy) / span:.4f} |")
    print()
