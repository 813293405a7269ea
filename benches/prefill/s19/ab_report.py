#!/usr/bin/env python3
"""A/B of two prefill variants timed in blocks by blocked.py (session 19).

    python3 ab_report.py [--skip 1] DIR [DIR ...] > ab.md

Per (plan, prompt, rows): passes < --skip are warm-up and left out (run with --abba and an
odd --rounds, the passes kept are B A, A B, ...: each variant as often in each slot). Per
layer: moa ms of A and B = the median over the kept passes; B / A per layer (median, range,
layers where B is faster in every kept pair of passes), the ratio of the sums; the noise:
A's own passes against each other (odd kept passes over even). Then moa / ideal (ideal =
kept share x the median SDPA block of the kept passes) for both, with the pre-pass and
without it (kernel alone), and the near-dense layers (kept share > 0.9) over SDPA; then the
engine form (session 18's: the kernel alone plus what the engine's V copy in the cache write
and `_vfix` cost in session 16, ENGINE_EXTRA_MS a layer), as `CudaLlama` runs it.
"""
import argparse
import gzip
import json
import os
import statistics as st
from collections import defaultdict


# ms a layer the engine adds to the kernel alone (session 16, RESULTS "Session 18").
ENGINE_EXTRA_MS = {("vicuna7b", 4096): 0.034, ("llama3_8b", 4096): 0.013, ("vicuna7b", 16384): 0.030, ("llama3_8b", 16384): 0.012}


def load(path):
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    if not os.path.exists(path):
        return []
    f = gzip.open(path, "rt") if path.endswith(".gz") else open(path)
    return [json.loads(l) for l in f if l.strip()]


ap = argparse.ArgumentParser()
ap.add_argument("--skip", type=int, default=1, help="warm-up passes left out")
ap.add_argument("dirs", nargs="+")
a = ap.parse_args()
moa, sdpa = [], []
for d in a.dirs:
    moa += load(os.path.join(d, "moa.jsonl"))
    sdpa += load(os.path.join(d, "sdpa.jsonl"))

cfgs, variants = [], defaultdict(list)
t = defaultdict(lambda: defaultdict(dict))  # (cfg, variant) -> layer -> pass -> row
for r in moa:
    c = (r["plan"], r["prompt"], r["rows"])
    if c not in cfgs:
        cfgs.append(c)
    if r["variant"] not in variants[c]:
        variants[c].append(r["variant"])
    t[(c, r["variant"])][r["layer"]][r["round"]] = r
sd = defaultdict(list)
for r in sdpa:
    if r["after_pass"] >= a.skip:
        sd[(r["plan"], r["prompt"], r["rows"])].append(r["sdpa_ms"])


def kept(p):
    return {k: v for k, v in p.items() if k >= a.skip}


def med(p, kernel_only=False):
    return st.median(x["moa_ms"] - ((x["prepass_ms"] or 0.0) if kernel_only else 0.0) for x in kept(p).values())


print(f"## B / A per layer (passes >= {a.skip}; moa = median over the kept passes, pre-pass included)\n")
print("| plan | prompt x rows | B / A | passes | median | min | max | B faster in every pass | sum ratio | A/A odd/even passes: median (min-max) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for c in cfgs:
    vs = variants[c]
    A = t[(c, vs[0])]
    for v in vs[1:]:
        B = t[(c, v)]
        ls = [l for l in A if l in B and kept(A[l]) and kept(B[l])]
        r = [med(B[l]) / med(A[l]) for l in ls]
        passes = sorted(kept(A[ls[0]]))
        every = sum(all(B[l][p]["moa_ms"] < A[l][p]["moa_ms"] for p in kept(B[l]) if p in A[l]) for l in ls)
        s = sum(med(B[l]) for l in ls) / sum(med(A[l]) for l in ls)
        odd = [p for p in passes if p % 2 == 1]
        even = [p for p in passes if p % 2 == 0]
        aa = "-"
        if odd and even:
            q = [st.median(A[l][p]["moa_ms"] for p in odd) / st.median(A[l][p]["moa_ms"] for p in even) for l in ls]
            aa = f"{st.median(q):.3f} ({min(q):.3f}-{max(q):.3f})"
        print(f"| {c[0]} | {c[1]} x {c[2]} | {v[-6:]} / {vs[0][-6:]} | {len(passes)} | {st.median(r):.3f} | {min(r):.3f} | "
              f"{max(r):.3f} | {every} of {len(ls)} | {s:.3f} | {aa} |")

print("\n## moa / ideal (ideal = kept share x the median SDPA block of the kept passes)\n")
print("| plan | prompt x rows | variant | SDPA ms | moa / ideal: median, worst (layer) | <= 1.15 | kernel alone: median, worst | near-dense / SDPA (layers) | near-dense kernel alone |")
print("|---|---|---|---|---|---|---|---|---|")
for c in cfgs:
    if not sd.get(c):
        continue
    d = st.median(sd[c])
    for v in variants[c]:
        L = t[(c, v)]
        share = {l: next(iter(p.values()))["kept_share"] for l, p in L.items()}
        ri = {l: med(p) / (share[l] * d) for l, p in L.items() if kept(p)}
        rk = {l: med(p, True) / (share[l] * d) for l, p in L.items() if kept(p)}
        wl, wk = max(ri, key=ri.get), max(rk, key=rk.get)
        near = [med(p) / d for l, p in L.items() if share[l] > 0.9 and kept(p)]
        neark = [med(p, True) / d for l, p in L.items() if share[l] > 0.9 and kept(p)]
        nd = f"{min(near):.3f}-{max(near):.3f} ({len(near)})" if near else "-"
        ndk = f"{min(neark):.3f}-{max(neark):.3f}" if neark else "-"
        print(f"| {c[0]} | {c[1]} x {c[2]} | {v} | {d:.3f} | {st.median(ri.values()):.3f}, {ri[wl]:.3f} (l{wl}) | "
              f"{sum(x <= 1.15 for x in ri.values())} of {len(ri)} | {st.median(rk.values()):.3f}, {rk[wk]:.3f} (l{wk}) | {nd} | {ndk} |")

print("\n## Engine form (kernel alone + ENGINE_EXTRA_MS) / ideal\n")
print("| plan | prompt x rows | variant | median, worst (layer) | <= 1.15 | near-dense / SDPA (layers) |")
print("|---|---|---|---|---|---|")
for c in cfgs:
    if not sd.get(c) or (c[0], c[1]) not in ENGINE_EXTRA_MS:
        continue
    d, e = st.median(sd[c]), ENGINE_EXTRA_MS[(c[0], c[1])]
    for v in variants[c]:
        L = t[(c, v)]
        share = {l: next(iter(p.values()))["kept_share"] for l, p in L.items()}
        re = {l: (med(p, True) + e) / (share[l] * d) for l, p in L.items() if kept(p)}
        w = max(re, key=re.get)
        near = [(med(p, True) + e) / d for l, p in L.items() if share[l] > 0.9 and kept(p)]
        nd = f"{min(near):.3f}-{max(near):.3f} ({len(near)})" if near else "-"
        print(f"| {c[0]} | {c[1]} x {c[2]} | {v} | {st.median(re.values()):.3f}, {re[w]:.3f} (l{w}) | "
              f"{sum(x <= 1.15 for x in re.values())} of {len(re)} | {nd} |")

print("\n## Per layer: kept share, A and B ms (median of kept passes), B / A, kernel alone / ideal of both\n")
for c in cfgs:
    vs = variants[c]
    if len(vs) < 2 or not sd.get(c):
        continue
    d = st.median(sd[c])
    A, B = t[(c, vs[0])], t[(c, vs[1])]
    print(f"\n{c[0]} {c[1]} x {c[2]}: A {vs[0]}, B {vs[1]}, SDPA {d:.3f} ms\n")
    print("| layer | kept share | A ms | B ms | B / A | A kernel / ideal | B kernel / ideal |")
    print("|---|---|---|---|---|---|---|")
    for l in sorted(A):
        if l not in B or not kept(A[l]) or not kept(B[l]):
            continue
        sh = next(iter(A[l].values()))["kept_share"]
        print(f"| {l} | {sh:.3f} | {med(A[l]):.3f} | {med(B[l]):.3f} | {med(B[l]) / med(A[l]):.3f} | "
              f"{med(A[l], True) / (sh * d):.3f} | {med(B[l], True) / (sh * d):.3f} |")
