#!/usr/bin/env python3
"""Tables of session 26's decode call 1 (benches/decode-h200/s26/decode/call1.sh).

    python3 ab.py CALL_DIR > CALL_DIR/summary.md

Arms: Llama-3-8B A = 4x3eqmskv (default), B = 4x3eqmskvd (speculating in one chunk); Vicuna-7B
A = 4x3eiclmsj (default), B = 4x3eiclmsjd. Passes: MODEL-X{1..5}.jsonl, whichever exist.
Per model and configuration: lists (plain split / cluster / unsplit), layers at the target
per pass (B = 16: >= 0.95 x SDPA dense after the same writes, peers.jsonl; B = 4: >= 3.8
TB/s), time / A in geometric mean per pass, X - A per layer per pass (median [min, max]),
A/A (A_i - A_1), layers faster (slower) in every pass beyond their A/A, and `partials_nonzero`
over every `d` line (must be 0). Then per layer at the configurations with missing cells.
"""
import glob
import json
import math
import statistics as st
import sys

d = sys.argv[1]


def rows(path):
    try:
        return [json.loads(x) for x in open(path) if x.strip()]
    except FileNotFoundError:
        return []


def load(path):
    return {(r["batch"], r["prompt"], r["layer"]): r for r in rows(path)}


def fmt(xs):
    return f"{st.median(xs):+.2f} [{min(xs):+.2f}, {max(xs):+.2f}]" if xs else "—"


sdpa = {(r["model"], r["batch"], r["prompt"]): r["tbps"] for r in rows(f"{d}/peers.jsonl") if r["impl"] == "sdpa_producer"}


def target(model, cfg, tbps):
    if cfg[0] == 16:
        key = (model,) + cfg
        return tbps >= 0.95 * sdpa[key] if key in sdpa else None
    return tbps >= 3.8


bad = [(f, r["layer"], r["batch"], r["prompt"], r["partials_nonzero"]) for f in sorted(glob.glob(f"{d}/*.jsonl"))
       for r in rows(f) if r.get("partials_nonzero")]
n_checked = sum(r.get("partials_nonzero") is not None for f in glob.glob(f"{d}/*.jsonl") for r in rows(f))
print(f"partials_nonzero: {n_checked} `d` lines checked, {len(bad)} with words not 0" + (f": {bad[:5]}" if bad else ""))

for model, arms, kv in (("llama", "AB", 8), ("vicuna", "AB", 32)):
    arm = {a: [x for x in (load(f"{d}/{model}-{a}{i}.jsonl") for i in range(1, 6)) if x] for a in arms}
    A = arm["A"]
    if not A:
        continue
    mname = "llama-3-8b" if model == "llama" else "vicuna-7b"
    print(f"\n### {model}: every layer, {len(A)} passes (arms {arms})\n")
    print("| B | prompt | arm | lists (plain split / cluster / unsplit) | ≥ target per pass | time / A, geomean per pass | X − A per layer per pass, median [min, max] (µs) | A/A median [min, max] (µs) | faster / slower in every pass beyond A/A |")
    print("|---|---|---|---|---|---|---|---|---|")
    cfgs = sorted({k[:2] for k in A[0]}, key=lambda c: (-c[0], c[1]))
    for cfg in cfgs:
        keys = sorted(k for k in A[0] if k[:2] == cfg)
        aa = {k: [A[i][k]["us"] - A[0][k]["us"] for i in range(1, len(A)) if k in A[i]] for k in keys}
        for name in arms:
            X = arm[name]
            if not X:
                continue
            r0 = [X[0][k] for k in keys if k in X[0]]
            ps = sum(r["cluster"] == 1 and r["items"] > cfg[0] * kv for r in r0)
            cl = sum(r["cluster"] > 1 for r in r0)
            hits = ", ".join(str(sum(bool(target(mname, cfg, X[i][k]["tbps"])) for k in keys if k in X[i])) for i in range(len(X)))
            if (mname,) + cfg not in sdpa and cfg[0] == 16:
                hits = "— (no SDPA)"
            lists = f"{ps} / {cl} / {len(r0) - ps - cl}"
            if name == "A":
                print(f"| {cfg[0]} | {cfg[1]} | A | {lists} | {hits} | | | {fmt([x for k in keys for x in aa[k]])} | |")
                continue
            n = min(len(X), len(A))
            ratios, diffs = [], []
            for i in range(n):
                ks = [k for k in keys if k in X[i] and k in A[i]]
                ratios.append(math.exp(st.mean(math.log(X[i][k]["us"] / A[i][k]["us"]) for k in ks)))
                diffs.append([X[i][k]["us"] - A[i][k]["us"] for k in ks])
            win = lose = 0
            for k in keys:
                dd = [X[i][k]["us"] - A[i][k]["us"] for i in range(n) if k in X[i] and k in A[i]]
                noise = max((abs(x) for x in aa[k]), default=0.0)
                if len(dd) == n and all(x < 0 for x in dd) and max(dd) < -noise:
                    win += 1
                if len(dd) == n and all(x > 0 for x in dd) and min(dd) > noise:
                    lose += 1
            print(f"| {cfg[0]} | {cfg[1]} | {name} | {lists} | {hits} | " + ", ".join(f"{x:.3f}" for x in ratios)
                  + " | " + "; ".join(fmt(x) for x in diffs) + f" | | {win} / {lose} of {len(keys)} |")
    for cfg in cfgs:
        keys = sorted(k for k in A[0] if k[:2] == cfg)
        print(f"\n#### {model} per layer, B = {cfg[0]}, prompt {cfg[1]} (µs; TB/s of pass 1)\n")
        others = [a for a in arms[1:] if arm[a]]
        print("| layer | A's list | A µs | A TB/s | " + " | ".join(f"{x} − A per pass" for x in others)
              + " | A/A | " + " | ".join(f"{x} TB/s" for x in others) + " |")
        print("|---" * (5 + 2 * len(others)) + "|")
        for k in keys:
            r = A[0][k]
            kind = f"c{r['cluster']}" if r["cluster"] > 1 else ("plain split" if r["items"] > cfg[0] * kv else "plain")
            row = [str(k[2]), f"{r['items']} × ≤{r['chunk']} {kind}", f"{r['us']:.2f}", f"{r['tbps']:.3f}"]
            for name in others:
                X = arm[name]
                row.append(", ".join(f"{X[i][k]['us'] - A[i][k]['us']:+.2f}" for i in range(min(len(X), len(A))) if k in X[i] and k in A[i]))
            row.append(", ".join(f"{A[i][k]['us'] - A[0][k]['us']:+.2f}" for i in range(1, len(A)) if k in A[i]))
            for name in others:
                row.append(f"{arm[name][0][k]['tbps']:.3f}" if k in arm[name][0] else "")
            print("| " + " | ".join(row) + " |")
if sdpa:
    print("\nSDPA dense (after the same writes, producer): " + ", ".join(f"{m} B = {b} {p}: {t:.2f} TB/s" for (m, b, p), t in sorted(sdpa.items())))
