#!/usr/bin/env python3
"""A/B decode tables of one attention_bench call (sessions 20 and 21's call1.sh).

    python3 ab.py CALL_DIR [LLAMA_A LLAMA_B VICUNA_A VICUNA_B]

(the folder the call's results.tgz, kept as CALL_DIR/raw.tgz, unpacks into). CALL_DIR holds,
per model (llama, vicuna), the blocks A1 B1 B2 A2 A3 B3 (.jsonl; A = the default, B = the
same with the letter under test), each over every layer at B = 16 / 4, 4k / 16k, and
peers.jsonl (SDPA dense after the same writes). The variants default to session 21's
(A 4x3eqmskv / 4x3eiclms, B with `j`, the last arrival merging from its registers); session
20's call is `ab.py CALL_DIR 4x3eqmsk 4x3eqmskv 4x3eiclms 4x3eiclmsv` (B = half partials `v`).
1. Per model, configuration and kernel: TB/s over the plan's bytes (min / geometric mean)
   per pass, layers >= 0.95 x SDPA and >= 3.8 TB/s, time / A of the same pass.
2. A/B with A/A, µs per layer: median [min, max] of B - A per pass, A2 - A1 and A3 - A1,
   layers where B is faster in every pass, split by the list: plain with split segments
   (where the letter changes the kernel's path), clusters, or no segment split.
3. The cells that miss a target with A (Llama B = 16 below 0.95 x SDPA; B = 4 below 3.8
   TB/s), A and B per pass.
"""
import json
import math
import statistics
import sys

MODELS = {"llama": ("llama-3-8b", 8, "4x3eqmskv", "4x3eqmskvj"),
          "vicuna": ("vicuna-7b", 32, "4x3eiclms", "4x3eiclmsj")}
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


def kind(r, kv):
    if r["cluster"] > 1:
        return "cluster"
    return "plain split" if r["items"] > r["batch"] * kv else "plain unsplit"


def main():
    d = sys.argv[1]
    if len(sys.argv) == 6:
        la, lb, va, vb = sys.argv[2:]
        MODELS["llama"] = ("llama-3-8b", 8, la, lb)
        MODELS["vicuna"] = ("vicuna-7b", 32, va, vb)
    elif len(sys.argv) != 2:
        sys.exit(__doc__)
    peers = load(f"{d}/peers.jsonl")
    for tag, (model, kv, A, B) in MODELS.items():
        runs = {}
        for p in PASSES:
            a, b = index(load(f"{d}/{tag}-A{p}.jsonl")), index(load(f"{d}/{tag}-B{p}.jsonl"))
            if a and b:
                runs[p] = (a, b)
        if not runs:
            continue
        sdpa = {(q["batch"], q["prompt"]): q["tbps"] for q in peers
                if q["impl"] == "sdpa_producer" and q["model"] == model}
        configs = sorted({k[:2] for a, _ in runs.values() for k in a}, key=lambda c: (-c[0], c[1]))
        print(f"## {model}\n")
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
                sd = f"{s:.2f}" if s else "—"
                print(f"| {c[0]} | {c[1]} | {name} | {', '.join(rates)} | {sd} | {', '.join(bar)} | {', '.join(tb)} | {', '.join(ratio)} |")
        print()
        print("| B | prompt | lists (plain split / cluster / unsplit) | B − A per pass (µs, median [min, max]) | A/A (A2 − A1; A3 − A1) | B faster in every pass | plain split: B − A (all passes) | cluster lists | unsplit |")
        print("|---|---|---|---|---|---|---|---|---|")
        for c in configs:
            p1 = runs[min(runs)][0]
            keys = sorted(k for k in p1 if k[:2] == c)
            kinds = {k: kind(p1[k], kv) for k in keys}
            per = []
            for p, (a, b) in runs.items():
                per.append(med([b[k]["us"] - a[k]["us"] for k in keys if k in a and k in b]))
            aa = []
            for p in (2, 3):
                if p in runs:
                    aa.append(med([runs[p][0][k]["us"] - runs[1][0][k]["us"] for k in keys]))
            faster = sum(all(runs[p][1][k]["us"] < runs[p][0][k]["us"] for p in runs) for k in keys)
            by = {}
            for kd in ("plain split", "cluster", "plain unsplit"):
                by[kd] = med([runs[p][1][k]["us"] - runs[p][0][k]["us"] for p in runs for k in keys if kinds[k] == kd])
            n = [sum(kinds[k] == kd for k in keys) for kd in ("plain split", "cluster", "plain unsplit")]
            print(f"| {c[0]} | {c[1]} | {n[0]} / {n[1]} / {n[2]} | {'; '.join(per)} | {'; '.join(aa)} | {faster}/{len(keys)} | {by['plain split']} | {by['cluster']} | {by['plain unsplit']} |")
        print()
        print("Cells that miss a target with A (B = 16: 0.95 × SDPA; B = 4: 3.8 TB/s):\n")
        print("| B | prompt | layer | list | A µs per pass | B µs per pass | B − A per pass | A TB/s | B TB/s | target |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for c in configs:
            s = sdpa.get(c)
            tgt = 0.95 * s if c[0] == 16 and s else 3.8 if c[0] == 4 else None
            if tgt is None:
                continue
            p1 = runs[min(runs)][0]
            for k in sorted(k for k in p1 if k[:2] == c):
                if min(runs[p][0][k]["tbps"] for p in runs) >= tgt and min(runs[p][1][k]["tbps"] for p in runs) >= tgt:
                    continue
                r = p1[k]
                lst = f"{r['items']} × ≤{r['chunk']}, {kind(r, kv)}" + (f" {r['cluster']}" if r["cluster"] > 1 else "")
                au = ", ".join(f"{runs[p][0][k]['us']:.2f}" for p in runs)
                bu = ", ".join(f"{runs[p][1][k]['us']:.2f}" for p in runs)
                du = ", ".join(f"{runs[p][1][k]['us'] - runs[p][0][k]['us']:+.2f}" for p in runs)
                at = ", ".join(f"{runs[p][0][k]['tbps']:.2f}" for p in runs)
                bt = ", ".join(f"{runs[p][1][k]['tbps']:.2f}" for p in runs)
                print(f"| {c[0]} | {c[1]} | {k[2]} | {lst} | {au} | {bu} | {du} | {at} | {bt} | {tgt:.2f} |")
        print()


if __name__ == "__main__":
    main()
