#!/usr/bin/env python3
"""Markdown tables for benches/RESULTS.md from one device call's attention_bench JSON
lines (moa, every layer) and decode_peers.py JSON lines (SDPA dense), measured in the
same call: a summary per configuration and a per-layer table per model.

    python3 benches/decode-h200/tables.py bench.jsonl peers.jsonl
"""
import json
import statistics
import sys

moa = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
peers = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]
sdpa = {(r["model"], r["batch"], r["prompt"]): r for r in peers if r["impl"] == "sdpa"}
cfgs = sorted({(r["model"], r["batch"], r["prompt"]) for r in moa}, key=lambda c: (c[0] != "vicuna-7b", -c[1], c[2]))

print("| model | B | prompt | N | moa TB/s min / median / max | moa own dense TB/s | SDPA dense TB/s | "
      "moa rate / SDPA rate min / median | layers ≥ 0.95 | speedup vs SDPA, per layer min–max | "
      "all 32 layers vs SDPA | all 32 layers vs own dense |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for c in cfgs:
    rs = [r for r in moa if (r["model"], r["batch"], r["prompt"]) == c]
    s = sdpa.get(c)
    t = [r["tbps"] for r in rs]
    own = rs[0]["dense_tbps"]
    line = f"| {c[0]} | {c[1]} | {c[2]} | {rs[0]['n_tokens']} | {min(t):.2f} / {statistics.median(t):.2f} / {max(t):.2f} | {own:.2f} | "
    if s:
        ratio = [x / s["tbps"] for x in t]
        sp = [s["us"] / r["us"] for r in rs]
        line += (f"{s['tbps']:.2f} | {min(ratio):.2f} / {statistics.median(ratio):.2f} | "
                 f"{sum(x >= 0.95 for x in ratio)}/{len(ratio)} | {min(sp):.2f}–{max(sp):.2f} | "
                 f"{len(rs) * s['us'] / sum(r['us'] for r in rs):.2f}x | ")
    else:
        line += "| | | | | "
    line += f"{len(rs) * rs[0]['dense_us'] / sum(r['us'] for r in rs):.2f}x |"
    print(line)

for model in sorted({c[0] for c in cfgs}, key=lambda m: m != "vicuna-7b"):
    mc = [c for c in cfgs if c[0] == model]
    prompts = sorted({c[2] for c in mc})
    print()
    print(f"#### {model}: every layer, read rate over the plan's KV bytes (TB/s) and that rate / SDPA dense's rate")
    print()
    head = "| layer | " + " | ".join(f"density {p // 1024}k" for p in prompts) + " | "
    head += " | ".join(f"B{b} {p // 1024}k" for (_, b, p) in mc) + " | "
    head += " | ".join(f"/ SDPA B{b} {p // 1024}k" for (_, b, p) in mc) + " |"
    print(head)
    print("|" + "---|" * (1 + len(prompts) + 2 * len(mc)))
    by = {(r["model"], r["batch"], r["prompt"], r["layer"]): r for r in moa}
    for layer in sorted({r["layer"] for r in moa if r["model"] == model}):
        cells = []
        for p in prompts:
            r = next((by[k] for k in by if k[0] == model and k[2] == p and k[3] == layer), None)
            cells.append(f"{r['kv_bytes'] / r['dense_kv_bytes']:.2f}" if r else "")
        for c in mc:
            r = by.get(c + (layer,))
            cells.append(f"{r['tbps']:.2f}" if r else "")
        for c in mc:
            r, s = by.get(c + (layer,)), sdpa.get(c)
            cells.append(f"{r['tbps'] / s['tbps']:.2f}" if r and s else "")
        print(f"| {layer} | " + " | ".join(cells) + " |")
