#!/usr/bin/env python3
"""Paired perplexity statistics from `moa eval --json` (per-token nats, `perplexity_nats`).

For each plan against dense: perplexity change, the standard error of the mean per-token
difference (windows as blocks: tokens of one window are not independent, so the error is
taken over the per-window means), each window's change, the change in the first and the
second half of the scored tokens, and how concentrated the loss is (share of the summed
increase carried by the 5% of tokens with the largest increase).

Usage: ppl_stats.py eval.json
"""
import json
import math
import sys


def mean(xs):
    return sum(xs) / len(xs)


def main(path):
    r = json.load(open(path))
    plans = {p["name"]: p.get("perplexity_nats") or [] for p in r["plans"]}
    dense = plans.get("dense")
    if not dense:
        sys.exit("no per-token nats for dense in " + path)
    setup = r.get("perplexity_setup")
    print(f"setup (rows, window, scored, files): {setup}")
    print("| plan | ppl | vs dense | ± 1 s.e. (windows) | per window | 1st half / 2nd half | top 5% tokens' share |")
    print("|---|---|---|---|---|---|---|")
    d_all = [x for w in dense for x in w]
    for name, nats in plans.items():
        if not nats:
            continue
        p_all = [x for w in nats for x in w]
        ppl = math.exp(mean(p_all))
        if name == "dense":
            print(f"| dense | {ppl:.3f} | | | | | |")
            continue
        win = [mean(p) - mean(d) for p, d in zip(nats, dense)]
        k = len(win)
        se = math.sqrt(sum((w - mean(win)) ** 2 for w in win) / (k - 1) / k) if k > 1 else float("nan")
        diff = mean(p_all) - mean(d_all)
        h = len(dense[0]) // 2
        first = mean([x for p, d in zip(nats, dense) for x in [a - b for a, b in zip(p[:h], d[:h])]])
        second = mean([x for p, d in zip(nats, dense) for x in [a - b for a, b in zip(p[h:], d[h:])]])
        deltas = sorted((a - b for a, b in zip(p_all, d_all)), reverse=True)
        top = sum(deltas[: max(1, len(deltas) // 20)])
        share = top / sum(deltas) if sum(deltas) > 0 else float("nan")
        pct = lambda x: f"{100 * (math.exp(x) - 1):+.1f}%"
        print(
            f"| {name} | {ppl:.3f} | {pct(diff)} | ±{100 * se:.1f}% | "
            + " ".join(pct(w) for w in win)
            + f" | {pct(first)} / {pct(second)} | {share:.2f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
