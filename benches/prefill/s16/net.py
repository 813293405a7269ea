#!/usr/bin/env python3
"""Rewrites bench_prefill rows of `NAME@cw` variants (call 1's binary added the fused cache
write's cost against `moa_rope_kv` over Q, K and V, which mixes in the gain of writing V in
64-token blocks) so that moa_ms = kernel_ms (`_vfix` + prefill) + (write_fused - write_split):
only what the f16 copy and the maxima add to the cache write. Also prints, per plan and
shape, the cache write's three forms (median over layers, ms).

    python3 net.py in.jsonl... > out.jsonl   (the summary goes to stderr)
"""
import json
import statistics
import sys
from collections import defaultdict

forms = defaultdict(lambda: defaultdict(list))
for path in sys.argv[1:]:
    for line in open(path):
        if not line.strip():
            continue
        r = json.loads(line)
        if r["variant"].endswith("@cw"):
            r["write_delta_ms"] = r["write_fused_ms"] - r["write_split_ms"]
            r["moa_ms"] = r["kernel_ms"] + r["write_delta_ms"]
        if r.get("write_base_ms") is not None and r.get("round", 0) == 0 and not r["variant"].endswith("@cw"):
            key = (r["plan"], r["prompt"], r["rows"])
            for f in ("base", "split", "fused"):
                forms[key][f].append(r[f"write_{f}_ms"])
            forms[key]["prepass"].append(r["prepass_ms"])
        print(json.dumps(r))
print("| plan | prompt x rows | layers | moa_rope_kv (Q, K, V) | moa_rope_kv (Q, K) + moa_v_write | + f16 copy and maxima | copy's cost | the pre-pass it replaces |", file=sys.stderr)
print("|---|---|---|---|---|---|---|---|", file=sys.stderr)
for (plan, prompt, rows), f in sorted(forms.items()):
    m = {k: statistics.median(v) for k, v in f.items()}
    print(f"| {plan} | {prompt} x {rows} | {len(f['base'])} | {m['base']:.4f} | {m['split']:.4f} | {m['fused']:.4f} | "
          f"{m['fused'] - m['split']:+.4f} | {m['prepass']:.4f} |", file=sys.stderr)
