#!/usr/bin/env python3
"""Session 20: per-layer time predicted from the plan's bytes (and the list's shape) against
what was measured, per configuration, before any device call.

    attention_bench --model llama-3-8b:8:$L --batch 16,4 --prompt 4096,16384 \\
        --dry-run-blocks 264 > dry-llama.jsonl          # the lists (item lengths, chunks)
    python3 fit.py dry-llama.jsonl RUN_DIR [TAG]        # RUN_DIR: TAG1..3.jsonl, e.g. A1.jsonl

Per configuration: the least-squares line time = c + bytes / R over the 32 layers (the
mean of the passes), each layer's residual, the fluid model's time (`FluidModel::h200`,
printed by the dry run) and the bytes a layer needs to reach a target rate r with that
line: bytes >= c / (1/r - 1/R).
"""
import json
import statistics
import sys


def main():
    dry = {(r["batch"], r["prompt"], r["layer"]): r for r in map(json.loads, open(sys.argv[1]))}
    tag = sys.argv[3] if len(sys.argv) > 3 else "A"
    meas = {}
    for p in (1, 2, 3):
        try:
            for line in open(f"{sys.argv[2]}/{tag}{p}.jsonl"):
                r = json.loads(line)
                meas.setdefault((r["batch"], r["prompt"], r["layer"]), []).append(r)
        except FileNotFoundError:
            pass
    for cfg in sorted({k[:2] for k in meas}, key=lambda c: (-c[0], c[1])):
        keys = sorted(k for k in meas if k[:2] == cfg and k in dry)
        xs = [meas[k][0]["kv_bytes"] / 1e6 for k in keys]
        ys = [statistics.mean(r["us"] for r in meas[k]) for k in keys]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        a = my - b * mx
        print(f"\n### B = {cfg[0]}, prompt {cfg[1]}: time = {a:.2f} µs + bytes / {1 / b:.2f} TB/s")
        for r in (3.8, 3.6):
            need = a / (1 / r - b) if 1 / r > b else float("inf")
            print(f"- {r} TB/s needs ≥ {need:.0f} MB on this line")
        print()
        print("| layer | list | items with keys | item slots min / median / max | chunks of the longest split segment | MB | µs (mean) | TB/s | residual µs | fluid model µs |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for k, x, y in zip(keys, xs, ys):
            d = dry[k]
            lst = f"{d['items']} × ≤{d['chunk']}, " + (f"clusters of {d['cluster']}" if d["cluster"] > 1 else "plain")
            print(f"| {k[2]} | {lst} | {d['busy_items']} | {d['item_min']} / {d['item_median']} / {d['item_max']} | "
                  f"{d['seg_chunks_max']} | {x:.1f} | {y:.2f} | {x / y:.2f} | {y - (a + b * x):+.2f} | {d['model_us']:.2f} |")


if __name__ == "__main__":
    main()
