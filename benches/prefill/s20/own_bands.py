#!/usr/bin/env python3
"""What `d` (own bands, templates/cuda/prefill.cu.j2 `prefill_own_bands`) can save, per layer,
before any device time: the key tiles a query tile's consumer warpgroups take sections for.

Without `d` every consumer warpgroup of a 192-row query tile takes a section for every key tile
of the block's band (n tiles: sinks + the band of all 192 rows); with `d` each takes its own
(sinks + its 64 rows' band, at most 2 positions skipped at the band's start: the ring's 4
stages), so the block's round robin has n_sec = max over warpgroups of its own count sections.
The layers' (sink, window) per head come from a blocked.py moa.jsonl (`heads_sink_window`).
Predicted kernel ratio from session 18's fit (F per query tile, c per section):
(F + c (n_sec + 1)) / (F + c (n + 1)) summed over the layer's query tiles.

    python3 own_bands.py benches/prefill/s19/call2/b4k/moa.jsonl.gz benches/prefill/s19/call2/b16k/moa.jsonl.gz
"""
import gzip
import json
import math
import sys

BM, BN, S = 192, 64, 4
F_ONE, F_T, C = 4.05, 4.47, 1.43  # us a query tile (one-tile, persistent) and a section
NARROW = {"vicuna7b": {2, 4, *range(22, 32)}, "llama3_8b": {1, 18, 19, 21, 23, *range(25, 32)}}


def tiles(t0, t1, sink, window):
    last = (t1 - 1) // BN
    band_first = last + 1 if window == 0 else (t0 + 1 - window if t0 + 1 > window else 0) // BN
    sink_tiles = min((min(sink, t1) + BN - 1) // BN, band_first)
    n = sink_tiles + (last + 1 - band_first)
    if window == 0:
        return n, n
    own = []
    for w in range(3):
        w = min(w, (t1 - 1 - t0) // 64)
        tw0 = t0 + 64 * w
        last_w = min(tw0 + 63, t1 - 1) // BN
        first_w = (tw0 + 1 - window if tw0 + 1 > window else 0) // BN
        sink_end = (min(sink, t1) + BN - 1) // BN
        lo = sink_tiles + (0 if band_first < sink_end else min(first_w - band_first, S - 2))
        hi = sink_tiles + (last_w + 1 - band_first)
        own.append(sink_tiles + hi - lo)
    return n, max(own)


def layer(hsw, prompt, rows):
    nz = math.ceil(prompt / BM)
    end = prompt <= 8192
    n_sum = d_sum = q = 0
    for sink, window in hsw:
        for z in range(nz):
            if end:
                t1 = prompt - z * BM
                t0 = max(t1 - BM, 0)
            else:
                t0 = z * BM
                t1 = min(t0 + BM, prompt)
            n, d = tiles(t0, t1, sink, window)
            n_sum += n * rows
            d_sum += d * rows
            q += rows
    return q, n_sum, d_sum


def main():
    seen = {}
    for path in sys.argv[1:]:
        f = gzip.open(path, "rt") if path.endswith(".gz") else open(path)
        for line in f:
            r = json.loads(line)
            key = (r["plan"], r["prompt"], r["rows"], r["layer"])
            if key not in seen:
                seen[key] = r
    print("| plan | prompt x rows | layer | kept share | form | sections a query tile: now → d | predicted kernel d / now |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for key in sorted(seen):
        r = seen[key]
        plan, prompt, rows, lay = key
        q, n_sum, d_sum = layer(r["heads_sink_window"], prompt, rows)
        narrow = lay in NARROW.get(plan, ())
        f = F_T if narrow else F_ONE
        now = f * q + C * (n_sum + q)
        new = f * q + C * (d_sum + q)
        ratio = new / now
        summary.setdefault((plan, prompt, rows), []).append((ratio, lay, narrow))
        print(f"| {plan} | {prompt} x {rows} | {lay} | {r['kept_share']:.3f} | {'t' if narrow else 'one-tile'} | "
              f"{(n_sum + q) / q:.2f} → {(d_sum + q) / q:.2f} | {ratio:.3f} |")
    print()
    print("| plan | prompt x rows | d / now: narrow layers (min–max) | other layers (min–max) |")
    print("|---|---|---|---|")
    for cfg, xs in sorted(summary.items()):
        nar = [x[0] for x in xs if x[2]]
        oth = [x[0] for x in xs if not x[2]]
        fmt = lambda v: f"{min(v):.3f}–{max(v):.3f}" if v else "–"
        print(f"| {cfg[0]} | {cfg[1]} x {cfg[2]} | {fmt(nar)} | {fmt(oth)} |")


if __name__ == "__main__":
    main()
