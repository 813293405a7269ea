#!/usr/bin/env python3
"""Issue 9, session 10: the first-order cost of each head at a plan's own window, read from a
profile taken under that plan (`moa profile --under-plan PLAN`): cuts[qb, d] summed over query
blocks at the window's distance, i.e. the estimated loss change of restoring the head to the
whole row (docs/CALIBRATION.md, "Cost under the plan"). Per layer (heads clamped at 0, as the
optimizer does) and the top heads. β-only plans (α = 0), spans rounded to 64, min 128.

Usage: cost_at_plan.py influence_N.safetensors PLAN.toml
"""
import json, struct, sys, tomllib, array
prof, plan = sys.argv[1], sys.argv[2]
b = open(prof, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8+n]); data = b[8+n:]
m = h['cut_influence']; s, e = m['data_offsets']
a = array.array('f'); a.frombytes(data[s:e])
L, H, NB, _ = m['shape']
N = int(h['__metadata__']['n_tokens']); blk = int(h['__metadata__']['block_tokens'])
p = tomllib.load(open(plan, 'rb'))
sink = p['span']['sink_tokens']
def col(l, hh, d):
    base = (l*H + hh) * NB * NB
    return sum(a[base + qb*NB + d] for qb in range(NB))
rows = []
for l in range(L):
    for hh in range(H):
        beta = p['layers'][l]['beta'][hh]
        span = max(int(round(beta * N / 64) * 64), 128)
        win = span - min(span, sink)
        d = win // blk
        v = col(l, hh, d) if d < NB else 0.0
        rows.append((l, hh, beta, span, v))
lay = {}
for l, hh, beta, span, v in rows:
    lay[l] = lay.get(l, 0) + max(v, 0)
print("per layer (Σ heads, clamped first-order cost at the plan's window = estimated restore gain):")
print(" ".join(f"{l}:{lay[l]:.3f}" for l in sorted(lay)))
print("total", round(sum(lay.values()),3))
print("top heads:")
for l, hh, beta, span, v in sorted(rows, key=lambda r: -r[4])[:16]:
    print(f"  {l}.{hh} beta {beta} span {span}: {v:.4f}")
