#!/usr/bin/env python3
"""Tables of session 24's decode call 1 (benches/decode-h200/s24/call1.sh).

    python3 ab.py CALL_DIR [ARMS] > CALL_DIR/summary.md

ARMS: the arms' letters, the reference first (call 1: ABC; call 2: ADE, where D =
4x3eqmskv last:0 and E = 4x3eqmskv last:1).

- the sweep at B = 4 16k (sweep1 / sweep2: kernels x chunk policies, every layer): per
  (kernel, policy), the median over layers of its time minus the default's (4x3eqmskv,
  auto) in the same process, and the layers >= 3.8 TB/s;
- the blocks A B C | C B A | A B C (llama-X{1,2,3}.jsonl): per configuration, layers at the
  target per pass, time / A in geometric mean, X - A per layer (median [min, max]) per pass,
  A/A (A2 - A1, A3 - A1), and the layers faster in every pass beyond their A/A;
- per layer at B = 4 16k and B = 16 4k: A's list and TB/s, B - A and C - A per pass.
"""
import json
import math
import statistics as st
import sys

d = sys.argv[1]
arms = sys.argv[2] if len(sys.argv) > 2 else "ABC"


def rows(path):
    try:
        return [json.loads(x) for x in open(path) if x.strip()]
    except FileNotFoundError:
        return []


def load(path):
    return {(r["batch"], r["prompt"], r["layer"]): r for r in rows(path)}


def fmt(xs):
    return f"{st.median(xs):+.2f} [{min(xs):+.2f}, {max(xs):+.2f}]" if xs else "—"


sdpa = {(r["batch"], r["prompt"]): r["tbps"] for r in rows(f"{d}/peers.jsonl") if r["impl"] == "sdpa_producer"}


def target(cfg, tbps):
    if cfg[0] == 16:
        return tbps >= 0.95 * sdpa[cfg] if cfg in sdpa else None
    return tbps >= 3.8


# Sweep.
for sw in ("sweep1", "sweep2"):
    rs = rows(f"{d}/{sw}.jsonl")
    if not rs:
        continue
    base = {r["layer"]: r for r in rs if r["variant"] == "4x3eqmskv" and r["chunk_arg"] == "auto"}
    combos = sorted({(r["variant"], r["chunk_arg"]) for r in rs}, key=lambda a: (a[0], len(a[1]), a[1]))
    print(f"\n### {sw}: B = 4, prompt 16384 (µs against 4x3eqmskv auto, same process)\n")
    print("| kernel | chunks | median − default (µs) [min, max] | faster layers | ≥ 3.8 TB/s | geomean TB/s |")
    print("|---|---|---|---|---|---|")
    for v, c in combos:
        sel = {r["layer"]: r for r in rs if (r["variant"], r["chunk_arg"]) == (v, c)}
        diffs = [sel[l]["us"] - base[l]["us"] for l in sel if l in base]
        hit = sum(r["tbps"] >= 3.8 for r in sel.values())
        gm = math.exp(st.mean(math.log(r["tbps"]) for r in sel.values()))
        print(f"| {v} | {c} | {fmt(diffs)} | {sum(x < 0 for x in diffs)}/{len(diffs)} | {hit} | {gm:.3f} |")

# Blocks.
arm = {a: [load(f"{d}/llama-{a}{i}.jsonl") for i in (1, 2, 3)] for a in arms}
A = arm[arms[0]]
if A[0]:
    print(f"\n### Every layer, three passes (arms {arms}; call 1: A = 4x3eqmskv auto, B = 4x3eqmskvj last:X, C = 4x3eqmskv last:X, X from the sweep: 1)\n")
    print("| B | prompt | arm | lists (plain split / cluster / unsplit) | ≥ target per pass | time / A, geomean per pass | X − A per layer per pass, median [min, max] (µs) | A/A (µs) | faster in every pass beyond A/A |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cfg in sorted({k[:2] for k in A[0]}, key=lambda c: (-c[0], c[1])):
        keys = [k for k in A[0] if k[:2] == cfg]
        aa = {k: [A[i][k]["us"] - A[0][k]["us"] for i in (1, 2) if k in A[i]] for k in keys}
        for name in arms:
            X = arm[name]
            if not all(X):
                continue
            r0 = [X[0][k] for k in keys if k in X[0]]
            ps = sum(r["cluster"] == 1 and r["items"] > cfg[0] * 8 for r in r0)
            cl = sum(r["cluster"] > 1 for r in r0)
            hits = "— (no SDPA)" if cfg[0] == 16 and cfg not in sdpa else ", ".join(
                str(sum(bool(target(cfg, X[i][k]["tbps"])) for k in keys if k in X[i])) for i in range(3))
            if name == arms[0]:
                print(f"| {cfg[0]} | {cfg[1]} | A | {ps} / {cl} / {len(r0) - ps - cl} | {hits} | | | "
                      f"{fmt([x for k in keys for x in aa[k]])} | |")
                continue
            ratios, diffs = [], []
            for i in range(3):
                ks = [k for k in keys if k in X[i] and k in A[i]]
                ratios.append(math.exp(st.mean(math.log(X[i][k]["us"] / A[i][k]["us"]) for k in ks)))
                diffs.append([X[i][k]["us"] - A[i][k]["us"] for k in ks])
            win = 0
            for k in keys:
                dd = [X[i][k]["us"] - A[i][k]["us"] for i in range(3) if k in X[i] and k in A[i]]
                if len(dd) == 3 and all(x < 0 for x in dd) and max(dd) < -max(abs(x) for x in aa[k]):
                    win += 1
            print(f"| {cfg[0]} | {cfg[1]} | {name} | {ps} / {cl} / {len(r0) - ps - cl} | {hits} | "
                  + ", ".join(f"{x:.3f}" for x in ratios) + " | " + "; ".join(fmt(x) for x in diffs)
                  + f" | | {win}/{len(keys)} |")
    for cfg in ((4, 16384), (16, 4096), (16, 16384), (4, 4096)):
        keys = sorted(k for k in A[0] if k[:2] == cfg)
        if not keys:
            continue
        print(f"\n#### Per layer, B = {cfg[0]}, prompt {cfg[1]} (µs; TB/s of pass 1)\n")
        print("| layer | A's list | A µs | A TB/s | " + " | ".join(f"{x} − A per pass" for x in arms[1:])
              + " | A/A | " + " | ".join(f"{x} TB/s" for x in arms[1:]) + " |")
        print("|---" * (4 + 2 * len(arms[1:]) + 1) + "|")
        for k in keys:
            r = A[0][k]
            kind = f"c{r['cluster']}" if r["cluster"] > 1 else "plain"
            row = [str(k[2]), f"{r['items']} × ≤{r['chunk']} {kind}", f"{r['us']:.2f}", f"{r['tbps']:.3f}"]
            for name in arms[1:]:
                X = arm[name]
                row.append(", ".join(f"{X[i][k]['us'] - A[i][k]['us']:+.2f}" for i in range(3) if k in X[i] and k in A[i]))
            row.append(", ".join(f"{A[i][k]['us'] - A[0][k]['us']:+.2f}" for i in (1, 2) if k in A[i]))
            for name in arms[1:]:
                X = arm[name]
                row.append(f"{X[0][k]['tbps']:.3f}" if k in X[0] else "")
            print("| " + " | ".join(row) + " |")
if sdpa:
    print("\nSDPA dense (after the same writes, producer): " + ", ".join(f"B = {b} {p}: {t:.2f} TB/s" for (b, p), t in sorted(sdpa.items())))
