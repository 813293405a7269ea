"""List scheduling (132 SMs, blocks in launch order, timed by session 12's fit) of tiles from the
row's start and from its end (`f`): the makespan over the mean, the tail of the launch.

    python3 benches/prefill/s15/tail_sim.py benches/prefill/s13/prefill-call2/ab4k.jsonl.gz
"""
import json, gzip, sys, heapq
BM, BN, SMS = 192, 64, 132
F, C = 7.2, 1.415
def tiles(t0, t1, sink, window):
    last = (t1 - 1)//BN
    bf = last + 1 if window == 0 else ((t0 + 1 - window) if t0 + 1 > window else 0)//BN
    stl = min((min(sink, t1) + BN - 1)//BN, bf)
    return stl + (last + 1 - bf)
def blocks(L, hsw, R, end):
    nz = (L + BM - 1)//BM
    out = []
    for z in range(nz):          # blockIdx.z order: z=0 first
        for r in range(R):
            for sink, win in hsw:
                span = sink + win; s = min(span, 64); w = span - s
                if end: t1 = L - z*BM; t0 = max(0, t1 - BM)
                else: t0 = (nz-1-z)*BM; t1 = min(t0 + BM, L)
                out.append(F + C*tiles(t0, t1, s, w))
    return out
def makespan(d):
    h = [0.0]*SMS
    for x in d:
        t = heapq.heappop(h); heapq.heappush(h, t + x)
    return max(h)
rows = {}
for f in sys.argv[1:]:
    for l in gzip.open(f, 'rt'):
        r = json.loads(l); rows[(r['plan'], r['prompt'], r['rows'], r['layer'])] = r
for k in sorted(rows):
    if k[3] not in (0, 12, 15, 27, 31): continue
    r = rows[k]
    for end in (False, True):
        d = blocks(k[1], r['heads_sink_window'], k[2], end)
        ms = makespan(d); avg = sum(d)/SMS
        print(k, 'end' if end else 'start', 'makespan %.0f us, mean %.0f, tail %.1f%%' % (ms, avg, 100*(ms/avg-1)), 'measured kernel %.0f' % (1000*(r['moa_ms']-r['prepass_ms'])) if not end else '')
