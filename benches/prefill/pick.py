#!/usr/bin/env python3
"""Ranks the prefill kernel variants of a `bench_prefill --variants` sweep.

Reads JSON lines (several files), takes the first variant as the baseline, and for every
variant prints the geometric mean and the worst of moa_ms / baseline moa_ms over all
(plan, prompt, rows, layer) rows, plus the largest output difference to the baseline
(`--compare`). Prints a Markdown table to stderr and, on stdout, the baseline followed by
the `--top` fastest other variants whose output matched (comma-separated: the argument of
the next `bench_prefill --variants`).

    python3 pick.py sweep16k.jsonl sweep4k.jsonl --top 2
"""
import argparse
import json
import math
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--top", type=int, default=2)
    ap.add_argument("--max-diff", type=float, default=0.02, help="largest output difference to the baseline that counts as a match")
    args = ap.parse_args()
    rows = [json.loads(l) for f in args.files for l in open(f) if l.strip()]
    if not rows:
        sys.exit("no rows")
    base = rows[0]["variant"]
    key = lambda r: (r["plan"], r["prompt"], r["rows"], r["layer"])
    base_ms = {key(r): r["moa_ms"] for r in rows if r["variant"] == base}
    stats = {}
    for r in rows:
        if key(r) not in base_ms:
            continue
        s = stats.setdefault(r["variant"], {"logs": [], "worst": 0.0, "diff": 0.0, "n": 0})
        ratio = r["moa_ms"] / base_ms[key(r)]
        s["logs"].append(math.log(ratio))
        s["worst"] = max(s["worst"], ratio)
        d = r.get("max_diff_vs_first")
        if d is not None:
            s["diff"] = max(s["diff"], d)
        s["n"] += 1
    lines = ["| variant | rows | time / baseline: geomean | worst | max abs diff vs baseline |", "|---|---|---|---|---|"]
    ranked = sorted(stats.items(), key=lambda kv: sum(kv[1]["logs"]) / len(kv[1]["logs"]))
    for v, s in ranked:
        g = math.exp(sum(s["logs"]) / len(s["logs"]))
        lines.append(f"| {v}{' (baseline)' if v == base else ''} | {s['n']} | {g:.3f} | {s['worst']:.3f} | {s['diff']:.2e} |")
    print("\n".join(lines), file=sys.stderr)
    chosen = [v for v, s in ranked if v != base and s["diff"] <= args.max_diff][: args.top]
    print(",".join([base] + chosen))


if __name__ == "__main__":
    main()
