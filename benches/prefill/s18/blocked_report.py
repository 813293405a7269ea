#!/usr/bin/env python3
"""Report of blocked.py's runs: SDPA per block, moa / ideal per layer and configuration,
A/B and A/A of whole passes.

    python3 blocked_report.py DIR [DIR ...] > report.md

Per (plan, prompt, rows): the SDPA blocks (each block's median over its pseudo-layers)
and their spread (max / min); per variant, moa / ideal with moa = the layer's median over
passes and ideal = kept share x the median of the shape's SDPA blocks (also the kernel
alone, without the pre-pass: moa_ms - prepass_ms), layers within 1.15x, and moa / SDPA on
the near-dense layers (kept share > 0.9). Then every variant against the first, pass by
pass (pass r of B over pass r of A per layer: median, min, max and the ratio of the sums),
and the A/A of each variant (pass r over pass 0). Last, the first variant's layers.
"""
import gzip
import json
import os
import statistics as st
import sys
from collections import defaultdict


def load(path):
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    if not os.path.exists(path):
        return []
    f = gzip.open(path, "rt") if path.endswith(".gz") else open(path)
    return [json.loads(l) for l in f if l.strip()]


moa, sdpa = [], []
for d in sys.argv[1:]:
    moa += load(os.path.join(d, "moa.jsonl"))
    sdpa += load(os.path.join(d, "sdpa.jsonl"))
cfgs = []
for r in moa:
    c = (r["plan"], r["prompt"], r["rows"])
    if c not in cfgs:
        cfgs.append(c)
# SDPA is one shape per (prompt, rows) (K/V expanded to the query heads).
sd = defaultdict(list)
for r in sdpa:
    sd[(r["plan"], r["prompt"], r["rows"])].append(r)

print("## SDPA blocks (dense causal, K/V expanded; each block's median over its pseudo-layers)\n")
print("| plan | prompt x rows | after blocks (pass:variant) | SDPA ms per block | median | spread max/min |")
print("|---|---|---|---|---|---|")
sdpa_ms = {}
for c in cfgs:
    rs = sd.get(c, [])
    if not rs:
        continue
    ms = [r["sdpa_ms"] for r in rs]
    sdpa_ms[c] = st.median(ms)
    print(f"| {c[0]} | {c[1]} x {c[2]} | {' '.join(str(r['after_pass']) + ':' + r['after_variant'][-4:] for r in rs)} | "
          f"{' '.join(f'{x:.3f}' for x in ms)} | {sdpa_ms[c]:.3f} | {max(ms) / min(ms):.3f} |")

# t[(cfg, variant)][layer][pass] = row
t = defaultdict(lambda: defaultdict(dict))
variants = defaultdict(list)
for r in moa:
    c = (r["plan"], r["prompt"], r["rows"])
    if r["variant"] not in variants[c]:
        variants[c].append(r["variant"])
    t[(c, r["variant"])][r["layer"]][r["round"]] = r


def med_ms(rows, kernel_only=False):
    return st.median(x["moa_ms"] - ((x["prepass_ms"] or 0.0) if kernel_only else 0.0) for x in rows.values())


print("\n## moa / ideal (moa: the layer's median over passes, pre-pass included; ideal: kept share x the SDPA median)\n")
print("| plan | prompt x rows | variant | SDPA ms | moa / ideal: median, worst (layer) | layers <= 1.15 | kernel alone / ideal: median, worst | near-dense moa / SDPA: min-max (layers) | kernel alone near-dense |")
print("|---|---|---|---|---|---|---|---|---|")
for c in cfgs:
    if c not in sdpa_ms:
        continue
    d = sdpa_ms[c]
    for v in variants[c]:
        L = t[(c, v)]
        share = {l: next(iter(p.values()))["kept_share"] for l, p in L.items()}
        ri = {l: med_ms(p) / (share[l] * d) for l, p in L.items()}
        rk = {l: med_ms(p, True) / (share[l] * d) for l, p in L.items()}
        wl = max(ri, key=ri.get)
        wk = max(rk, key=rk.get)
        near = [med_ms(p) / d for l, p in L.items() if share[l] > 0.9]
        neark = [med_ms(p, True) / d for l, p in L.items() if share[l] > 0.9]
        nd = f"{min(near):.3f}-{max(near):.3f} ({len(near)})" if near else "-"
        ndk = f"{min(neark):.3f}-{max(neark):.3f}" if neark else "-"
        print(f"| {c[0]} | {c[1]} x {c[2]} | {v} | {d:.3f} | {st.median(ri.values()):.3f}, {ri[wl]:.3f} (l{wl}) | "
              f"{sum(x <= 1.15 for x in ri.values())} of {len(ri)} | {st.median(rk.values()):.3f}, {rk[wk]:.3f} (l{wk}) | {nd} | {ndk} |")

print("\n## Pass by pass: each variant over the first (same pass), and each over its own pass 0 (A/A)\n")
print("| plan | prompt x rows | ratio | layers | median | min | max | sum ratio |")
print("|---|---|---|---|---|---|---|---|")
for c in cfgs:
    vs = variants[c]
    A = t[(c, vs[0])]
    passes = sorted({p for l in A.values() for p in l})
    for v in vs:
        B = t[(c, v)]
        for p in passes:
            pairs = []
            if v != vs[0]:
                pairs.append((f"{v[-6:]} / {vs[0][-6:]} pass {p}", A, p, B, p))
            if p > 0:
                pairs.append((f"A/A {v[-6:]} pass {p} / pass 0", B, 0, B, p))
            for name, X, px, Y, py in pairs:
                ls = [l for l in X if px in X[l] and l in Y and py in Y[l]]
                if not ls:
                    continue
                r = [Y[l][py]["moa_ms"] / X[l][px]["moa_ms"] for l in ls]
                s = sum(Y[l][py]["moa_ms"] for l in ls) / sum(X[l][px]["moa_ms"] for l in ls)
                print(f"| {c[0]} | {c[1]} x {c[2]} | {name} | {len(ls)} | {st.median(r):.3f} | {min(r):.3f} | {max(r):.3f} | {s:.3f} |")

print("\n## Layers of each configuration (first variant; ms per pass, pre-pass included)\n")
for c in cfgs:
    if c not in sdpa_ms:
        continue
    d = sdpa_ms[c]
    v = variants[c][0]
    L = t[(c, v)]
    print(f"\n{c[0]} {c[1]} x {c[2]}, {v}, SDPA {d:.3f} ms\n")
    print("| layer | kept share | moa ms per pass | pre-pass ms | moa / ideal | kernel alone / ideal | moa / SDPA |")
    print("|---|---|---|---|---|---|---|")
    for l in sorted(L):
        p = L[l]
        sh = next(iter(p.values()))["kept_share"]
        pre = st.median((x["prepass_ms"] or 0.0) for x in p.values())
        m = med_ms(p)
        print(f"| {l} | {sh:.3f} | {' '.join('%.3f' % p[k]['moa_ms'] for k in sorted(p))} | {pre:.3f} | {m / (sh * d):.3f} | "
              f"{med_ms(p, True) / (sh * d):.3f} | {m / d:.3f} |")
