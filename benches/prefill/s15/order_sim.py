"""List scheduling of the launch order on 132 SMs (blocks timed by session 12's fit): today's
order (query tile from the last, heads fastest) against L2 sections of G head-rows (`l`,
measured and removed in session 15); the makespan over today's and the head-rows in flight:

    python3 benches/prefill/s15/order_sim.py benches/prefill/s13/prefill-call2/ab4k.jsonl.gz
"""
import json, gzip, sys, heapq
BM, BN, SMS = 192, 64, 132
F, C = 7.2, 1.415
def tiles(t0, t1, sink, window):
    last = (t1 - 1)//BN
    bf = last + 1 if window == 0 else ((t0 + 1 - window) if t0 + 1 > window else 0)//BN
    stl = min((min(sink, t1) + BN - 1)//BN, bf)
    return stl + (last + 1 - bf)
def dur(L, sink, win, z, end=True):
    span = sink + win; s = min(span, 64); w = span - s
    if end: t1 = L - z*BM; t0 = max(0, t1 - BM)
    else: nz=(L+BM-1)//BM; t0 = (nz-1-z)*BM; t1 = min(t0 + BM, L)
    return F + C*tiles(t0, t1, s, w)
def order(L, hsw, R, G):
    nz = (L + BM - 1)//BM; H = len(hsw); HR = H*R
    out = []
    if G == 0:
        for z in range(nz):
            for hr in range(HR): out.append((hr, z))
        return out
    for c0 in range(0, HR, G):
        g = min(G, HR - c0)
        for z in range(nz):
            for i in range(g): out.append((c0 + i, z))
    return out
def sim(L, hsw, R, G):
    h = [(0.0, i) for i in range(SMS)]
    H = len(hsw)
    # concurrency footprint: distinct head-rows among blocks in flight at each start
    inflight = {}
    foot = []
    for hr, z in order(L, hsw, R, G):
        t, sm = heapq.heappop(h)
        inflight[sm] = hr
        foot.append(len(set(inflight.values())))
        sink, win = hsw[hr % H]
        heapq.heappush(h, (t + dur(L, sink, win, z), sm))
    return max(x for x, _ in h), sum(foot)/len(foot)
rows = {}
for f in sys.argv[1:]:
    for l in gzip.open(f, 'rt'):
        r = json.loads(l); rows[(r['plan'], r['prompt'], r['rows'], r['layer'])] = r
for k in sorted(rows):
    if k[3] not in (0, 15, 27, 31): continue
    r = rows[k]; base = None
    out = []
    for G in (0, 4, 8, 16, 32):
        ms, fp = sim(k[1], r['heads_sink_window'], k[2], G)
        if base is None: base = ms
        out.append('G%d %.3f (%.0f hr)' % (G, ms/base, fp))
    print(k, ' '.join(out))
