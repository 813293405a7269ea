"""Tiles per block with query tiles from the row's start (the former default) and from its
end (`f`), per layer, from bench_prefill rows (heads_sink_window), and the time saved by
session 12's fit (F per block, C per 192 x 64 tile, per SM). Session 15's prediction of `f`:

    python3 benches/prefill/s15/tiles_model.py benches/prefill/s13/prefill-call2/ab4k.jsonl.gz \\
        benches/prefill/s13/prefill-call2/ab16k.jsonl.gz
"""
import json, gzip, sys, statistics as st
from collections import defaultdict
BM, BN, SMS = 192, 64, 132
F, C = 7.2, 1.415   # us per block, per 192x64 tile (per SM)
def tiles(t0, t1, sink, window):
    last = (t1 - 1)//BN
    bf = last + 1 if window == 0 else ((t0 + 1 - window) if t0 + 1 > window else 0)//BN
    stl = min((min(sink, t1) + BN - 1)//BN, bf)
    return stl + (last + 1 - bf)
def count(L, hsw, rows, end):
    n = 0; nb = 0
    nz = (L + BM - 1)//BM
    for sink, win in hsw:
        span = sink + win
        s = min(span, 64); w = span - s
        for z in range(nz):
            if end:
                t1 = L - z*BM; t0 = max(0, t1 - BM)
            else:
                t0 = z*BM; t1 = min(t0 + BM, L)
            n += tiles(t0, t1, s, w); nb += 1
    return n*rows, nb*rows
if __name__ != '__main__': pass
rows = {}
for f in (sys.argv[1:] if __name__ == '__main__' else []):
    for l in gzip.open(f, 'rt'):
        r = json.loads(l)
        rows[(r['plan'], r['prompt'], r['rows'], r['layer'])] = r
res = defaultdict(list)
for (plan, L, R, layer), r in sorted(rows.items()):
    hsw = r['heads_sink_window']
    a, nb = count(L, hsw, R, False); b, _ = count(L, hsw, R, True)
    kern = r['moa_ms'] - r['prepass_ms']
    saved = C*(a - b)/SMS/1000
    ratio = (r['moa_ms'] - saved)/r['moa_ms']
    res[(plan, L, R)].append(ratio)
    if layer in (0, 15, 27, 31): print(plan, L, R, layer, a, b, round(a/b, 4), 'pred kernel-only', round((kern-saved)/kern, 3), 'with prepass', round(ratio, 3))
for k, v in (res.items() if __name__ == '__main__' else []): print(k, 'geomean pred', round(st.geometric_mean(v), 4), 'min', round(min(v), 3), 'max', round(max(v), 3))
