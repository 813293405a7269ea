#!/usr/bin/env python3
"""The error of the standard attention kernels in bf16 and f16 against an f64 reference, on
inputs drawn as `cuda_check` draws them, so that moa's tolerance (src/runtime/cases.rs:
max absolute error 3e-3 in bf16, 2e-3 in f16) can be judged against what the peers reach.

Inputs as `runtime::cases::prefill_case`: q uniform in [-2, 2), k and v uniform in [-1, 1),
rounded to the storage type; head_dim 128, 32 query heads over 8 KV heads (Llama-3-8B's
GQA; KV head h // 4 serves query head h); one causal prefill per row (dense: every key up
to the query). Row lengths: those of `standard_layer_cases` (1, 5, 19, 37, 64, 77, 99,
130), uniform 1..=300 as `random_layer_cases` draws them, and a few long rows. The
reference is softmax(q·kᵀ/√d)·v in f64 of the same rounded inputs; the error is the
largest |kernel − reference| over every output element (what `cuda_check` reports).

Backends through `torch.nn.attention.sdpa_kernel`: FLASH_ATTENTION, CUDNN_ATTENTION,
EFFICIENT_ATTENTION and MATH (each where it accepts the inputs).

    python3 peer_error.py --out peer_error.jsonl --table peer_error.md
"""

import argparse
import json
import math
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

HQ, HKV, D = 32, 8, 128
TOL = {"bf16": 3e-3, "f16": 2e-3}


def draw(gen, b, lens_max, dtype):
    q = (torch.rand(b, HQ, lens_max, D, generator=gen, device="cuda") * 4 - 2).to(dtype)
    k = (torch.rand(b, HKV, lens_max, D, generator=gen, device="cuda") * 2 - 1).to(dtype)
    v = (torch.rand(b, HKV, lens_max, D, generator=gen, device="cuda") * 2 - 1).to(dtype)
    return q, k, v


def reference(q, k, v):
    """f64 causal attention of the rounded inputs (KV heads expanded to the query heads)."""
    qd, kd, vd = (x.double() for x in (q, k, v))
    kd = kd.repeat_interleave(HQ // HKV, dim=1)
    vd = vd.repeat_interleave(HQ // HKV, dim=1)
    n = q.shape[2]
    s = (qd @ kd.transpose(-1, -2)) / math.sqrt(D)
    mask = torch.ones(n, n, dtype=torch.bool, device=q.device).tril()
    s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ vd


def kernel(q, k, v, backend):
    k = k.repeat_interleave(HQ // HKV, dim=1)
    v = v.repeat_interleave(HQ // HKV, dim=1)
    with sdpa_kernel([backend]):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--random-rows", type=int, default=256, help="rows of uniform 1..=300 tokens")
    ap.add_argument("--out", default="peer_error.jsonl")
    ap.add_argument("--table", default="peer_error.md")
    ap.add_argument("--budget-s", type=float, default=60.0)
    ap.add_argument("--time", action="store_true", help="also time dense causal SDPA per backend")
    a = ap.parse_args()
    t_start = time.time()
    gen = torch.Generator(device="cuda")
    gen.manual_seed(a.seed)
    # (length, rows): the standard cases' lengths, cuda_check's random rows, long rows.
    cpu = torch.Generator().manual_seed(a.seed)
    rand_lens = torch.randint(1, 301, (a.random_rows,), generator=cpu).tolist()
    groups = [(n, 64) for n in (1, 5, 19, 37, 64, 77, 99, 130)]
    by_len = {}
    for n in rand_lens:
        by_len[n] = by_len.get(n, 0) + 1
    groups += sorted(by_len.items())
    groups += [(1024, 4), (4096, 1)]
    backends = [
        ("flash", SDPBackend.FLASH_ATTENTION),
        ("cudnn", SDPBackend.CUDNN_ATTENTION),
        ("efficient", SDPBackend.EFFICIENT_ATTENTION),
        ("math", SDPBackend.MATH),
    ]
    rows_out = []
    with open(a.out, "w") as out:
        for dname, dtype in (("bf16", torch.bfloat16), ("f16", torch.float16)):
            stats = {b: {"max": 0.0, "rows": 0, "rows_over": 0, "short_max": 0.0, "long_max": 0.0,
                         "errors": []} for b, _ in backends}
            for n, b in groups:
                if time.time() - t_start > a.budget_s:
                    print(f"# budget reached before {dname} n={n}")
                    break
                q, k, v = draw(gen, b, n, dtype)
                ref = reference(q, k, v)
                for bname, be in backends:
                    st = stats[bname]
                    try:
                        o = kernel(q, k, v, be).double()
                    except RuntimeError as e:
                        # A backend that refuses a shape: counted, the first reason kept.
                        st["refused"] = st.get("refused", 0) + 1
                        st.setdefault("why", str(e).splitlines()[0][:100])
                        continue
                    err = (o - ref).abs().amax(dim=(1, 2, 3))  # per row
                    m = float(err.max())
                    st["max"] = max(st["max"], m)
                    st["rows"] += b
                    st["rows_over"] += int((err > TOL[dname]).sum())
                    key = "short_max" if n <= 300 else "long_max"
                    st[key] = max(st[key], m)
                    st["errors"].extend(err.tolist())
                    line = {"dtype": dname, "backend": bname, "len": n, "rows": b, "max_err": m,
                            "rows_over_tol": int((err > TOL[dname]).sum())}
                    out.write(json.dumps(line) + "\n")
                del q, k, v, ref
            for bname, _ in backends:
                st = stats[bname]
                errs = sorted(st.pop("errors"))
                p99 = errs[int(0.99 * (len(errs) - 1))] if errs else float("nan")
                rows_out.append({"dtype": dname, "backend": bname, "p99": p99, **st})
    with open(a.table, "w") as t:
        t.write("| storage | SDPA backend | rows | max abs error (rows ≤ 300 / 1024, 4096) | 99th percentile of a row's max | rows over moa's tolerance |\n")
        t.write("|---|---|---|---|---|---|\n")
        for r in rows_out:
            if r.get("refused"):
                t.write(f"| {r['dtype']} | {r['backend']} | refused {r['refused']} shapes: {r['why']} | | | |\n")
            if not r["rows"]:
                continue
            t.write(f"| {r['dtype']} | {r['backend']} | {r['rows']} | {r['short_max']:.3e} / {r['long_max']:.3e} "
                    f"| {r['p99']:.3e} | {r['rows_over']} (> {TOL[r['dtype']]:g}) |\n")
    print(open(a.table).read())
    print(f"# peer_error took {time.time() - t_start:.1f} s")
    if a.time:
        time_backends(a.table, backends)


def time_backends(table, backends):
    """Dense causal bf16 SDPA per backend at the benchmark's shapes (which kernel the
    default dispatch picks is the ideal's denominator in prefill_peers.py)."""
    rows = []
    for n, b in ((16384, 1), (4096, 4)):
        g = torch.Generator(device="cuda").manual_seed(0)
        q = torch.rand(b, HQ, n, D, device="cuda", dtype=torch.bfloat16, generator=g) * 2 - 1
        k = torch.rand(b, HQ, n, D, device="cuda", dtype=torch.bfloat16, generator=g) * 2 - 1
        v = torch.rand(b, HQ, n, D, device="cuda", dtype=torch.bfloat16, generator=g) * 2 - 1
        flops = 4 * b * HQ * D * n * (n + 1) / 2
        for bname, be in [("default", None)] + backends[:3]:
            def f():
                return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            try:
                if be is None:
                    ms = median_ms(f)
                else:
                    with sdpa_kernel([be]):
                        ms = median_ms(f)
            except RuntimeError as e:
                rows.append(f"| {n} × {b} | {bname} | refused: {str(e).splitlines()[0][:80]} | |")
                continue
            rows.append(f"| {n} × {b} | {bname} | {ms:.3f} | {flops / ms / 1e9:.0f} |")
        del q, k, v
    with open(table, "a") as t:
        t.write("\n| dense causal bf16, prompt × rows | SDPA backend | ms (median of 7) | TFLOP/s |\n|---|---|---|---|\n")
        t.write("\n".join(rows) + "\n")
    print("\n".join(rows))


def median_ms(fn, reps=7, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        e0 = torch.cuda.Event(enable_timing=True)
        e1 = torch.cuda.Event(enable_timing=True)
        e0.record()
        fn()
        e1.record()
        e1.synchronize()
        times.append(e0.elapsed_time(e1))
    times.sort()
    return times[len(times) // 2]


if __name__ == "__main__":
    main()
