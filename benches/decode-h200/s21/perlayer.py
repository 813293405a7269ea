#!/usr/bin/env python3
"""Per layer, B - A in each pass and A/A (A2 - A1, A3 - A1), µs, with each layer's list,
for one model of session 21's call 1 (benches/decode-h200/s21/call1.sh).

    python3 perlayer.py CALL_DIR [llama|vicuna] > CALL_DIR/perlayer-MODEL.md
"""
import json
import sys


def load(path):
    return {(r["batch"], r["prompt"], r["layer"]): r for r in (json.loads(x) for x in open(path) if x.strip())}


d = sys.argv[1]
model = sys.argv[2] if len(sys.argv) > 2 else "llama"
A = [load(f"{d}/{model}-A{i}.jsonl") for i in (1, 2, 3)]
B = [load(f"{d}/{model}-B{i}.jsonl") for i in (1, 2, 3)]
kv = 8 if model == "llama" else 32
for cfg in sorted({k[:2] for k in A[0]}, key=lambda c: (-c[0], c[1])):
    print(f"\n### {model} B = {cfg[0]}, prompt {cfg[1]}\n")
    print("| layer | list | A µs (pass 1) | B − A per pass | A/A | same sign, beyond A/A |")
    print("|---|---|---|---|---|---|")
    for layer in range(32):
        k = cfg + (layer,)
        if k not in A[0]:
            continue
        r = A[0][k]
        kind = f"c{r['cluster']}" if r["cluster"] > 1 else ("plain split" if r["items"] > cfg[0] * kv else "plain")
        dd = [B[i][k]["us"] - A[i][k]["us"] for i in range(3)]
        aa = [A[i][k]["us"] - A[0][k]["us"] for i in (1, 2)]
        noise = max(abs(x) for x in aa)
        flag = "yes" if (all(x > 0 for x in dd) or all(x < 0 for x in dd)) and min(abs(x) for x in dd) > noise else ""
        print(f"| {layer} | {r['items']} × ≤{r['chunk']} {kind} | {r['us']:.2f} | "
              + ", ".join(f"{x:+.2f}" for x in dd) + " | " + ", ".join(f"{x:+.2f}" for x in aa) + f" | {flag} |")
