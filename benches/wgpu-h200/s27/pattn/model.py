"""Model of one prefill pass (8 rows x 4096, SmolLM2 shape, moa-50) for call1.sh's header:
kept pairs, tiles of the old form (query head, 64 x 64) and of the group form (KV head,
32 queries x 3 heads, 64 keys), K/V bytes from L2.  python3 model.py  (from the repo root)."""
import math, tomllib
p = tomllib.load(open('plans/smollm2-135m-moa-50.toml', 'rb'))
N, SINK, MIN_SPAN, ROUND, D, R = 4096, 64, 128, 64, 64, 8
def span(a, b):
    return min((max(a + math.floor(b * N), MIN_SPAN) + ROUND - 1) // ROUND * ROUND, N)
def tiles(t0, qt, spans):
    last = (min(t0 + qt, N) - 1) // 64
    ms, first = 0, last + 1
    for s in spans:
        sk = min(s, SINK); w = s - sk; ms = max(ms, sk)
        if w > 0:
            first = min(first, (t0 + 1 - w) // 64 if t0 + 1 > w else 0)
    st = min((ms + 63) // 64, last + 1)
    return st + (last + 1 - max(first, st))
pairs = old = new = 0
for L in p['layers']:
    spans = [span(a, b) for a, b in zip(L['alpha'], L['beta'])]
    for s in spans:
        sk = min(s, SINK); w = s - sk
        pairs += sum(min(t + 1, w) + (min(sk, t + 1 - w) if t + 1 > w else 0) for t in range(N))
    old += sum(tiles(t0, 64, [s]) for s in spans for t0 in range(0, N, 64))
    new += sum(tiles(t0, 32, spans[3 * g:3 * g + 3]) for g in range(3) for t0 in range(0, N, 32))
dense = 30 * 9 * N * (N + 1) // 2
print(f"kept pairs {pairs * R:.3g} (dense {dense * R:.3g}); flop 4*d a pair: {pairs * R * 4 * D:.3g} (dense {dense * R * 4 * D:.3g})")
print(f"old form: {old * R} head tiles, K/V from L2 {old * R * 16384 / 1e9:.1f} GB")
print(f"group form: {new * R} group tiles, K/V from L2 {new * R * 16384 / 1e9:.1f} GB")
