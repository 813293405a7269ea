#!/usr/bin/env python3
"""Where the missing µs of the decode targets lie (session 17, item 1), from session 16's
call 1 (benches/decode-h200/s16/call1: bench.jsonl, peers.jsonl) and the work lists the
runtime builds (attention_bench --dry-run-blocks 264 > dry.jsonl; --spans spans.json).

Per missing cell: the time of the default kernel, the time the target allows, a device
copy of the same bytes (B = 4 only in session 16), the work list (items, longest item,
clusters, fill = slots / (items × longest item)) and what one wave of resident blocks
allows: the smallest longest item with no more items than the resident slots (264 plain
and pairs, 224 and 216 for the packed clusters of 4 and 8 the runtime allows,
worklist::DecodeSlots::packed_fit), i.e. whether a per-layer chunk
policy could shorten the longest item at all.

Usage: gaps.py S16_CALL1_DIR DRY_JSONL SPANS_JSON
"""
import json
import sys


def load(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def main():
    d, dry_path, spans_path = sys.argv[1:4]
    rows = load(f"{d}/bench.jsonl")
    peers = load(f"{d}/peers.jsonl")
    dry = {(r["model"], r["batch"], r["prompt"], r["layer"]): r for r in load(dry_path)}
    spans = {(s["model"], s["prompt"]): s for s in json.load(open(spans_path))}
    sdpa = {(p["model"], p["batch"], p["prompt"]): p["tbps"] for p in peers if p["impl"] == "sdpa_producer"}
    copy = {(p["model"], p["batch"], p["prompt"], p["layer"]): p["us"] for p in peers if p["impl"] == "copy_same_bytes"}
    default = {"llama-3-8b": "4x3eqms", "vicuna-7b": "4x3eiclms"}
    print("| model | B | prompt | layer | MB | µs | target µs | short µs | copy µs | µs − copy | items | longest | cluster | fill | min longest in one wave |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["variant"] != default[r["model"]]:
            continue
        key = (r["model"], r["batch"], r["prompt"])
        bar = 0.95 * sdpa[key] if r["batch"] == 16 else 3.8
        need = r["kv_bytes"] / (bar * 1e6)
        if r["us"] <= need:
            continue
        s = spans[(r["model"], r["prompt"])]
        seg = [min(x, s["n_tokens"]) for x in s["layers"][r["layer"]]["segment_span"]]
        slots = sum(seg) * r["batch"]
        w = dry[key + (r["layer"],)]
        longest = w["chunk"]
        fill = slots / (w["items"] * longest)
        # The shortest longest item (in 64-slot tiles) whose equal-chunk list fits one wave.
        cap = {4: 224, 8: 216}.get(w["cluster"], 264)
        best = None
        for c in range(64, 8193, 64):
            n = sum(-(-x // c) for x in seg) * r["batch"]
            if n <= cap:
                best = c
                break
        c_us = copy.get(key + (r["layer"],))
        cs = f"{c_us:.2f}" if c_us else "—"
        over = f"{r['us'] - c_us:+.2f}" if c_us else "—"
        print(f"| {r['model']} | {r['batch']} | {r['prompt']} | {r['layer']} | {r['kv_bytes'] / 1e6:.1f} | {r['us']:.2f} | "
              f"{need:.2f} | {r['us'] - need:.2f} | {cs} | {over} | {w['items']} | {longest} | {w['cluster']} | "
              f"{fill:.3f} | {best} |")


if __name__ == "__main__":
    main()
