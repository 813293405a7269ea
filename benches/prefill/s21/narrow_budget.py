#!/usr/bin/env python3
"""Session 21 (`--variant`, session 22: the fit over another variant's rows, e.g. `x`'s), before device time: what is left between the narrow layers and 1.15 x ideal
once `d` visits only own bands (issue 8). From a blocked.py run with `d` (session 20 call 1), the
kernel alone (bench_prefill's kernel_ms less its V pre-pass, as ab_report.py's "kernel alone"):

per layer, in 192 x 64 tile units: K = kept pairs / (192 * 64) (the work the ideal pays for),
S = the round robin's sections with `d` (per query tile the largest own count, as
benches/prefill/s20/own_bands.py counts them), Q = query tiles. A fit over the layers of a
form (one-tile, `t`) of kernel_ms * 132 = F * Q + c * (S + Q) (the + Q: one turn a query tile
with no Q·Kᵀ beside its P·V) splits each layer's kernel into
  rate:   c * K                      (the kept work at moa's section rate)
  edges:  c * (S - K)                (tiles visited beyond the kept pairs: the band's two
                                      diagonal edges and the sink tile's unkept part)
  turn:   c * Q                      (the round robin's extra turn a query tile)
  fixed:  F * Q                      (prologue, Q wait, section 0's softmax, epilogue)
and says how much of a query tile's time must go for the engine form (kernel + the engine's
V copy and _vfix) to reach 1.15 x ideal.

    python3 narrow_budget.py benches/prefill/s20/call1/b4k/moa.jsonl.gz benches/prefill/s20/call1/b16k/moa.jsonl.gz \
        --sdpa benches/prefill/s20/call1/b4k/sdpa.jsonl.gz benches/prefill/s20/call1/b16k/sdpa.jsonl.gz
"""
import argparse
import gzip
import json
import math
import statistics as st
from collections import defaultdict

BM, BN, S_RING = 192, 64, 4
SMS = 132
VARIANT = "3x64x1owghvuncafbdm"
NARROW = {"vicuna7b": {2, 4, *range(22, 32)}, "llama3_8b": {1, 18, 19, 21, 23, *range(25, 32)}}
ENGINE_EXTRA_MS = {("vicuna7b", 4096): 0.034, ("llama3_8b", 4096): 0.013, ("vicuna7b", 16384): 0.030, ("llama3_8b", 16384): 0.012}


def opn(p):
    return gzip.open(p, "rt") if p.endswith(".gz") else open(p)


def own_max(t0, t1, sink, window):
    last = (t1 - 1) // BN
    band_first = last + 1 if window == 0 else (t0 + 1 - window if t0 + 1 > window else 0) // BN
    sink_tiles = min((min(sink, t1) + BN - 1) // BN, band_first)
    n = sink_tiles + (last + 1 - band_first)
    if window == 0:
        return n
    own = []
    for w in range(3):
        w = min(w, (t1 - 1 - t0) // 64)
        tw0 = t0 + 64 * w
        last_w = min(tw0 + 63, t1 - 1) // BN
        first_w = (tw0 + 1 - window if tw0 + 1 > window else 0) // BN
        sink_end = (min(sink, t1) + BN - 1) // BN
        lo = sink_tiles + (0 if band_first < sink_end else min(first_w - band_first, S_RING - 2))
        hi = sink_tiles + (last_w + 1 - band_first)
        own.append(sink_tiles + hi - lo)
    return max(own)


def layer_counts(hsw, prompt, rows):
    nz = math.ceil(prompt / BM)
    end = prompt <= 8192
    s_sum = q = 0
    for sink, window in hsw:
        for z in range(nz):
            if end:
                t1 = prompt - z * BM
                t0 = max(t1 - BM, 0)
            else:
                t0 = z * BM
                t1 = min(t0 + BM, prompt)
            s_sum += own_max(t0, t1, sink, window) * rows
            q += rows
    return q, s_sum


def fit(rows):
    # least squares of y = F * a + c * b without intercept
    saa = sum(a * a for a, b, y in rows)
    sbb = sum(b * b for a, b, y in rows)
    sab = sum(a * b for a, b, y in rows)
    say = sum(a * y for a, b, y in rows)
    sby = sum(b * y for a, b, y in rows)
    det = saa * sbb - sab * sab
    return (say * sbb - sby * sab) / det, (saa * sby - sab * say) / det


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("moa", nargs="+")
    ap.add_argument("--sdpa", nargs="+", required=True)
    ap.add_argument("--variant", default=VARIANT)
    ap.add_argument("--skip", type=int, default=1)
    a = ap.parse_args()
    ms = defaultdict(list)
    info = {}
    for p in a.moa:
        for line in opn(p):
            r = json.loads(line)
            if r["variant"] != a.variant or r["round"] < a.skip:
                continue
            key = (r["plan"], r["prompt"], r["rows"], r["layer"])
            ms[key].append(r["kernel_ms"] - (r.get("prepass_ms") or 0.0))
            info[key] = r
    sd = defaultdict(list)
    for p in a.sdpa:
        for line in opn(p):
            r = json.loads(line)
            if r["after_pass"] >= a.skip:
                sd[(r["plan"], r["prompt"], r["rows"])].append(r["sdpa_ms"])
    rows = {}
    for key, v in ms.items():
        r = info[key]
        hsw = r["heads_sink_window"]
        hsw = json.loads(hsw) if isinstance(hsw, str) else hsw
        q, s = layer_counts(hsw, key[1], key[2])
        causal = r["q_heads"] * key[2] * key[1] * (key[1] + 1) / 2
        k = r["kept_share"] * causal / (BM * BN)
        rows[key] = dict(q=q, s=s, k=k, kernel=st.median(v), share=r["kept_share"])
    fits = {}
    for narrow in (False, True):
        pts = [(x["q"], x["s"] + x["q"], x["kernel"] * 1e3 * SMS) for key, x in rows.items()
               if (key[3] in NARROW[key[0]]) == narrow]
        fits[narrow] = fit(pts)
    print(f"fit over every layer of both plans at 4k x 4 and 16k x 1 ({a.variant}, kept passes' medians), "
          f"kernel_us * {SMS} = F * Q + c * (S + Q):")
    for narrow, (f, c) in fits.items():
        print(f"- {'`t` (narrow)' if narrow else 'one-tile'} layers: F = {f:.2f} us a query tile, c = {c:.3f} us a section")
    print()
    print("| plan | prompt x rows | layer | form | kept share | S/K | kernel / ideal | rate | edges | turn | fixed | engine / ideal | us a query tile to go for 1.15 (of) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(rows):
        plan, prompt, nrows, lay = key
        x = rows[key]
        narrow = lay in NARROW[plan]
        f, c = fits[narrow]
        sdpa = st.median(sd[(plan, prompt, nrows)])
        ideal = x["share"] * sdpa
        kern = x["kernel"]
        eng = kern + ENGINE_EXTRA_MS[(plan, prompt)]
        model = (f * x["q"] + c * (x["s"] + x["q"])) / SMS / 1e3
        scale = kern / model  # spread the residual over the parts
        parts = [c * x["k"], c * (x["s"] - x["k"]), c * x["q"], f * x["q"]]
        parts = [p * scale / SMS / 1e3 / ideal for p in parts]
        tile_us = kern * 1e3 * SMS / x["q"]
        go = max(0.0, eng - 1.15 * ideal) * 1e3 * SMS / x["q"]
        if eng / ideal <= 1.15 and not narrow:
            continue
        print(f"| {plan} | {prompt} x {nrows} | {lay} | {'t' if narrow else 'one-tile'} | {x['share']:.3f} | "
              f"{x['s'] / x['k']:.3f} | {kern / ideal:.3f} | {parts[0]:.3f} | {parts[1]:.3f} | {parts[2]:.3f} | "
              f"{parts[3]:.3f} | {eng / ideal:.3f} | {go:.2f} ({tile_us:.1f}) |")


if __name__ == "__main__":
    main()
