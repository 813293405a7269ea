#!/usr/bin/env python3
"""Blocked timing of moa's prefill kernels with dense SDPA in the same rhythm (session 18;
session 19 adds --warm-s: seconds of dense SDPA load before the child starts, so that the
first block does not run on a cool board).

Runs `bench_prefill --blocked --pause ARGS...` as a child: every block (one variant over
every layer of one (plan, prompt, rows) shape, `--reps` timed launches a layer after
`--warmups`) ends with a `#BLOCK` line, and the child waits on stdin. Here, in that pause,
one block of dense causal SDPA (`F.scaled_dot_product_attention(is_causal=True)`, K/V
expanded to the query heads, so both upstream plans share one shape) runs as many launches
in the same rhythm (per pseudo-layer: warm-ups, then timed launches each waited by its
event, the median kept), then the child is told to go on. So a pass over the shape is
A S B S A S B S ..., and the ideal of a layer (kept share x SDPA) comes from SDPA blocks
timed under the same conditions as moa's.

Writes DIR/moa.jsonl (bench_prefill's rows), DIR/sdpa.jsonl (one row per SDPA block:
shape, the block after which it ran, per pseudo-layer medians, their median) and
DIR/bench.log. Report: benches/prefill/s18/blocked_report.py.

    python3 blocked.py --out DIR --bench ./bench_prefill -- plans/vicuna7b.json:32 \
        --variants 3x64x1owghvuncafm --prompts 4096 --rows 4 --reps 5 --rounds 3
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F


def sdpa_block(q, k, v, layers, reps, warmups):
    """Per pseudo-layer median (ms) of `reps` launches after `warmups`, each waited."""
    meds = []
    for _ in range(layers):
        times = []
        for i in range(reps + warmups):
            a = torch.cuda.Event(enable_timing=True)
            b = torch.cuda.Event(enable_timing=True)
            a.record()
            F.scaled_dot_product_attention(q, k, v, is_causal=True)
            b.record()
            b.synchronize()
            if i >= warmups:
                times.append(a.elapsed_time(b))
        meds.append(statistics.median(times))
    return meds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--bench", default="./bench_prefill")
    ap.add_argument("--no-sdpa", action="store_true", help="moa blocks only (no pause)")
    ap.add_argument("--warm-s", type=float, default=0.0, help="seconds of SDPA load before the child starts")
    ap.add_argument("rest", nargs=argparse.REMAINDER, help="-- then bench_prefill's arguments")
    a = ap.parse_args()
    rest = a.rest[1:] if a.rest[:1] == ["--"] else a.rest
    os.makedirs(a.out, exist_ok=True)
    moa_path = os.path.join(a.out, "moa.jsonl")
    cmd = [a.bench, *rest, "--blocked", "--out", moa_path] + ([] if a.no_sdpa else ["--pause"])
    dtype = torch.bfloat16
    if "--dtype" in rest and rest[rest.index("--dtype") + 1] == "f16":
        dtype = torch.float16
    log = open(os.path.join(a.out, "bench.log"), "w")
    sd = open(os.path.join(a.out, "sdpa.jsonl"), "w")
    t0 = time.time()
    print(f"# {' '.join(cmd)}", file=log, flush=True)
    if a.warm_s > 0:
        # Dense causal SDPA at 4k x 4 (bf16) until --warm-s seconds have passed.
        g = torch.Generator(device="cuda").manual_seed(1)
        w = [torch.rand(4, 32, 4096, 128, device="cuda", dtype=dtype, generator=g) for _ in range(3)]
        n = 0
        while time.time() - t0 < a.warm_s:
            for _ in range(20):
                F.scaled_dot_product_attention(*w, is_causal=True)
            torch.cuda.synchronize()
            n += 20
        del w
        torch.cuda.empty_cache()
        print(f"# warm-up: {n} SDPA launches in {time.time() - t0:.1f} s", file=log, flush=True)
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    inputs = {}
    for line in child.stdout:
        log.write(f"[{time.time() - t0:7.2f}] {line}")
        log.flush()
        if not line.startswith("#BLOCK"):
            continue
        w = line.split()
        kv = dict(zip(w[4::2], w[5::2]))
        plan, prompt, rows = w[1], int(w[2]), int(w[3])
        print(f"[{time.time() - t0:6.1f}s] {plan} {prompt}x{rows} pass {kv['pass']} {kv['variant']}", flush=True)
        if a.no_sdpa:
            continue
        hq, d = int(kv["q_heads"]), int(kv["head_dim"])
        key = (prompt, rows, hq, d)
        if key not in inputs:
            inputs.clear()
            torch.cuda.empty_cache()
            g = torch.Generator(device="cuda").manual_seed(0)
            inputs[key] = tuple(
                torch.rand(rows, hq, prompt, d, device="cuda", dtype=dtype, generator=g) * 2 - 1 for _ in range(3)
            )
        q, k, v = inputs[key]
        ts = time.time()
        meds = sdpa_block(q, k, v, int(kv["layers"]), int(kv["reps"]), int(kv["warmups"]))
        row = dict(plan=plan, prompt=prompt, rows=rows, after_pass=int(kv["pass"]), after_block=int(kv["block"]),
                   after_variant=kv["variant"], sdpa_ms=statistics.median(meds), sdpa_min_ms=min(meds),
                   sdpa_max_ms=max(meds), layer_medians=meds, t_s=round(ts - t0, 2), block_s=round(time.time() - ts, 2))
        sd.write(json.dumps(row) + "\n")
        sd.flush()
        log.write(f"[{time.time() - t0:7.2f}] SDPA block: median {row['sdpa_ms']:.4f} ms ({min(meds):.4f}-{max(meds):.4f})\n")
        log.flush()
        child.stdin.write("go\n")
        child.stdin.flush()
    rc = child.wait()
    print(f"# bench_prefill rc={rc}, {time.time() - t0:.0f} s", file=log, flush=True)
    print(f"# bench_prefill rc={rc}, {time.time() - t0:.0f} s")
    sys.exit(rc)


if __name__ == "__main__":
    main()
