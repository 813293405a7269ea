#!/usr/bin/env python3
"""Session 19's decode tables (benches/decode-h200/s19/call1.sh).

    python3 ab.py CALL_DIR [PEERS_JSONL]

(the folder the call's results.tgz, kept as CALL_DIR/raw.tgz, unpacks into). CALL_DIR holds the blocks A1 B1 B2 A2 A3 B3 (.jsonl; A = the GQA default 4x3eqmsk, B =
4x3eqmskh: clusters of up to 16), each over every Llama-3-8B layer at B = 16 / 4, 4k / 16k,
and peers.jsonl (SDPA dense after the same writes; call 2 took none: pass call 1's).
1. Per configuration and kernel: TB/s over the plan's bytes (min / geometric mean) per
   block, layers >= 0.95 x SDPA and >= 3.8 TB/s, time / A of the same pass (min /
   geometric mean / max).
2. A/B with A/A, µs per layer: median [min, max] of B - A per pass, A2 - A1 and A3 - A1,
   layers where B is faster in every pass; split by whether B's list differs from A's.
3. The layers whose list changed: A's and B's list (cluster, items, longest item) and
   µs per pass.
"""
import json
import math
import statistics
import sys

A, B = "4x3eqmsk", "4x3eqmskh"
PASSES = (1, 2, 3)


def load(path):
    try:
        return [json.loads(line) for line in open(path) if line.strip()]
    except FileNotFoundError:
        return []


def index(rows):
    return {(r["batch"], r["prompt"], r["layer"]): r for r in rows}


def med(xs):
    return f"{statistics.median(xs):+.2f} [{min(xs):+.2f}, {max(xs):+.2f}]" if xs else "—"


def gmean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def lst(r):
    kind = f"clusters of {r['cluster']}" if r["cluster"] > 1 else "plain"
    return f"{r['items']} × ≤{r['chunk']}, {kind}"


def main():
    d = sys.argv[1]
    runs = {}
    for p in PASSES:
        a, b = index(load(f"{d}/A{p}.jsonl")), index(load(f"{d}/B{p}.jsonl"))
        if a and b:
            runs[p] = (a, b)
    peers = load(sys.argv[2] if len(sys.argv) > 2 else f"{d}/peers.jsonl")
    sdpa = {(q["batch"], q["prompt"]): q["tbps"] for q in peers
            if q["impl"] == "sdpa_producer" and q["model"] == "llama-3-8b"}
    configs = sorted({k[:2] for a, _ in runs.values() for k in a}, key=lambda c: (-c[0], c[1]))
    print("| B | prompt | kernel | TB/s min / geomean per pass | SDPA TB/s | ≥ 0.95 × SDPA per pass | ≥ 3.8 TB/s per pass | time / A per pass (min / geomean / max) |")
    print("|---|---|---|---|---|---|---|---|")
    for c in configs:
        s = sdpa.get(c)
        for name, which in ((A, 0), (B, 1)):
            rates, bar, tb, ratio = [], [], [], []
            for p, ab in runs.items():
                rows = [r for k, r in ab[which].items() if k[:2] == c]
                t = [r["tbps"] for r in rows]
                rates.append(f"{min(t):.2f} / {gmean(t):.2f}")
                bar.append(str(sum(x >= 0.95 * s for x in t)) if s else "—")
                tb.append(str(sum(x >= 3.8 for x in t)))
                if which == 1:
                    q = [ab[1][k]["us"] / ab[0][k]["us"] for k in ab[0] if k[:2] == c and k in ab[1]]
                    ratio.append(f"{min(q):.3f} / **{gmean(q):.3f}** / {max(q):.3f}")
            print(f"| {c[0]} | {c[1]} | {name} | {', '.join(rates)} | {s:.2f} | {', '.join(bar)} | {', '.join(tb)} | {', '.join(ratio)} |"
                  if s else f"| {c[0]} | {c[1]} | {name} | {', '.join(rates)} | — | — | {', '.join(tb)} | {', '.join(ratio)} |")
    print()
    print("| B | prompt | lists changed | B − A per pass (µs, median [min, max]) | A/A (A2 − A1, A3 − A1) | B faster in every pass | changed lists: B − A (all passes) | unchanged lists |")
    print("|---|---|---|---|---|---|---|---|")
    changed = {}
    for c in configs:
        a1 = runs[PASSES[0]][0]
        keys = sorted(k for k in a1 if k[:2] == c)
        ch = [k for k in keys if any((ab[0][k]["cluster"], ab[0][k]["items"], ab[0][k]["chunk"])
                                     != (ab[1][k]["cluster"], ab[1][k]["items"], ab[1][k]["chunk"])
                                     for ab in runs.values())]
        changed[c] = ch
        per = [med([ab[1][k]["us"] - ab[0][k]["us"] for k in keys]) for ab in runs.values()]
        aa = [med([runs[p][0][k]["us"] - a1[k]["us"] for k in keys]) for p in list(runs)[1:]]
        faster = sum(all(ab[1][k]["us"] < ab[0][k]["us"] for ab in runs.values()) for k in keys)
        dch = [ab[1][k]["us"] - ab[0][k]["us"] for ab in runs.values() for k in ch]
        dun = [ab[1][k]["us"] - ab[0][k]["us"] for ab in runs.values() for k in keys if k not in ch]
        print(f"| {c[0]} | {c[1]} | {len(ch)} | {'; '.join(per)} | {'; '.join(aa)} | {faster}/{len(keys)} | {med(dch)} | {med(dun)} |")
    print()
    print("| B | prompt | layer | A's list | B's list | A µs per pass | B µs per pass | B − A per pass | B TB/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in configs:
        for k in changed[c]:
            a = [ab[0][k] for ab in runs.values()]
            b = [ab[1][k] for ab in runs.values()]
            ua = ", ".join("%.2f" % x["us"] for x in a)
            ub = ", ".join("%.2f" % y["us"] for y in b)
            dd = ", ".join("%+.2f" % (y["us"] - x["us"]) for x, y in zip(a, b))
            tb = ", ".join("%.2f" % y["tbps"] for y in b)
            print(f"| {c[0]} | {c[1]} | {k[2]} | {lst(a[0])} | {lst(b[0])} | {ua} | {ub} | {dd} | {tb} |")


if __name__ == "__main__":
    main()
