#!/usr/bin/env python3
"""PyTorch peers of moa's prefill benchmark, run in the same device call.

Reads the JSON lines written by `examples/bench_prefill.rs` (one per plan, prompt, rows,
layer: moa's median time, the kept share of causal query-key pairs and every query head's
(sink, window)), then on the same GPU and shapes times

  * dense causal SDPA (`F.scaled_dot_product_attention(is_causal=True)`, K/V expanded to
    the query heads), once per (prompt, rows): the ideal of a layer is
    kept_share x this time;
  * FlexAttention with the identical per-head mask
    `k <= q and (k < sink_h or q - k < window_h)` (block mask built per layer, GQA through
    `enable_gqa`), per layer unless --no-flex.

Rows of several moa kernel variants (`variant` in the JSON, `bench_prefill --variants`)
share one dense and one FlexAttention time per shape and layer; the summary has one line
per variant.

Timing: CUDA events around single calls, median of --reps after warm-up, like the Rust side.
Writes a Markdown table (stdout and --table) and the raw rows as JSON lines (--out).

    python3 benches/peers/prefill_peers.py moa.jsonl --table prefill.md --out peers.jsonl
"""

import argparse
import json
import os
import statistics
import sys
import time

# The peers' argument checks, run before PyTorch is imported (peer_args.py).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_args import need_torch, nonnegative, readable, whole, wholes, writable  # noqa: E402

# Imported by main() once the arguments are checked (need_torch): --help and a bad value
# need no PyTorch.
torch = F = None


def median_ms(fn, reps, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def main():
    global torch, F
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("moa", type=readable, help="JSON lines from bench_prefill")
    # 0 timed calls ended in statistics.median's StatisticsError on the GPU.
    ap.add_argument("--reps", type=whole(1), default=10, help="timed calls (median)")
    ap.add_argument("--no-flex", action="store_true")
    # 0 was a ZeroDivisionError (layer % 0) at the first row.
    ap.add_argument("--flex-every", type=whole(1), default=1, help="time FlexAttention on every n-th layer only")
    ap.add_argument("--flex-budget-s", type=nonnegative, default=0, help="stop timing FlexAttention after this many seconds (0: no limit)")
    ap.add_argument("--table", default=None, type=writable, help="the Markdown table (written anew)")
    ap.add_argument("--out", default=None, type=writable, help="the raw rows as JSON lines (written anew)")
    args = ap.parse_args()

    rows = []
    with open(args.moa) as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                ap.error(f"argument moa: `{args.moa}` line {i} is not JSON ({e})")
    if not rows:
        ap.error(f"argument moa: `{args.moa}` has no rows")
    if not all(isinstance(r, dict) for r in rows):
        ap.error(f"argument moa: `{args.moa}` holds JSON that is not an object a line "
                 "(bench_prefill's rows)")
    if rows[0].get("dtype") not in ("bf16", "f16"):
        ap.error(f"argument moa: `{args.moa}` line 1's dtype is {rows[0].get('dtype')!r}: "
                 "allowed bf16, f16 (bench_prefill's rows)")
    torch = need_torch()
    F = torch.nn.functional
    dev = torch.device("cuda")
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16}[rows[0]["dtype"]]
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, {rows[0]['dtype']}", flush=True)

    flex = None
    if not args.no_flex:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        flex = torch.compile(flex_attention, dynamic=False)

    # One dense time per (q_heads, kv_heads, prompt, rows): the ideal's denominator.
    dense = {}
    inputs = {}
    t_start = time.time()
    masks = {}
    flex_done = {}
    out_rows = []
    for r in rows:
        hq, hkv, d = r["q_heads"], r["kv_heads"], r["head_dim"]
        L, B = r["prompt"], r["rows"]
        key = (hq, hkv, L, B)
        if key not in inputs:
            inputs.clear()
            torch.cuda.empty_cache()
            g = torch.Generator(device=dev).manual_seed(0)
            q = torch.rand(B, hq, L, d, device=dev, dtype=dtype, generator=g) * 2 - 1
            k = torch.rand(B, hkv, L, d, device=dev, dtype=dtype, generator=g) * 2 - 1
            v = torch.rand(B, hkv, L, d, device=dev, dtype=dtype, generator=g) * 2 - 1
            inputs[key] = (q, k, v)
            ke = k.repeat_interleave(hq // hkv, dim=1)
            ve = v.repeat_interleave(hq // hkv, dim=1)
            dense[key] = median_ms(
                lambda: F.scaled_dot_product_attention(q, ke, ve, is_causal=True), args.reps
            )
            del ke, ve
            print(f"dense causal SDPA hq={hq} hkv={hkv} L={L} B={B}: {dense[key]:.3f} ms", flush=True)
        q, k, v = inputs[key]
        dense_ms = dense[key]
        ideal = r["kept_share"] * dense_ms
        flex_key = (r["plan"], L, B, r["layer"])
        flex_ms = flex_done.get(flex_key)
        over = args.flex_budget_s > 0 and time.time() - t_start > args.flex_budget_s
        if flex is not None and flex_key not in flex_done and r["layer"] % args.flex_every == 0 and not over:
            # One mask_mod and two tensors for every layer, updated in place, so that the
            # compiled FlexAttention is not re-traced per layer.
            if hq not in masks:
                sink = torch.zeros(hq, device=dev, dtype=torch.int64)
                window = torch.zeros(hq, device=dev, dtype=torch.int64)

                def mask_mod(b, h, qi, kv, sink=sink, window=window):
                    return (kv <= qi) & ((kv < sink[h]) | (qi - kv < window[h]))

                masks[hq] = (sink, window, mask_mod)
            sink, window, mask_mod = masks[hq]
            sw = torch.tensor(r["heads_sink_window"], device=dev, dtype=torch.int64)
            sink.copy_(sw[:, 0])
            window.copy_(sw[:, 1])
            bm = create_block_mask(mask_mod, None, hq, L, L, device=dev)
            flex_ms = median_ms(lambda: flex(q, k, v, block_mask=bm, enable_gqa=hq != hkv), args.reps)
            flex_done[flex_key] = flex_ms
        row = dict(r)
        row.pop("heads_sink_window", None)
        row.update(dense_ms=dense_ms, ideal_ms=ideal, flex_ms=flex_ms,
                   moa_vs_ideal=r["moa_ms"] / ideal, moa_vs_dense=r["moa_ms"] / dense_ms,
                   flex_vs_ideal=None if flex_ms is None else flex_ms / ideal)
        out_rows.append(row)
        print(
            f"{r['plan']} L={L} B={B} layer {r['layer']:2d} {r.get('variant', '')}: share {r['kept_share']:.3f} "
            f"moa {r['moa_ms']:.3f} ms = {row['moa_vs_ideal']:.2f}x ideal, {row['moa_vs_dense']:.2f}x dense"
            + ("" if flex_ms is None else f"; flex {flex_ms:.3f} ms = {row['flex_vs_ideal']:.2f}x ideal"),
            flush=True,
        )

    if args.out:
        with open(args.out, "w") as f:
            for row in out_rows:
                f.write(json.dumps(row) + "\n")

    # Summary per (plan, prompt, rows): the worst layer and the spread.
    lines = [
        "| plan | prompt | rows | variant | layers | dense causal SDPA ms | kept share (min–max) | moa / ideal: median, worst (layer) | moa / dense, worst | FlexAttention / ideal: median, worst |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups = {}
    for row in out_rows:
        groups.setdefault((row["plan"], row["prompt"], row["rows"], row.get("variant", "")), []).append(row)
    for (plan, L, B, variant), rs in groups.items():
        vi = [x["moa_vs_ideal"] for x in rs]
        worst = max(rs, key=lambda x: x["moa_vs_ideal"])
        vd = max(x["moa_vs_dense"] for x in rs)
        fl = [x["flex_vs_ideal"] for x in rs if x["flex_vs_ideal"] is not None]
        fls = f"{statistics.median(fl):.2f}, {max(fl):.2f}" if fl else "–"
        shares = [x["kept_share"] for x in rs]
        lines.append(
            f"| {plan} | {L} | {B} | {variant} | {len(rs)} | {rs[0]['dense_ms']:.3f} | {min(shares):.2f}–{max(shares):.2f} | "
            f"{statistics.median(vi):.2f}, {max(vi):.2f} (l{worst['layer']}) | {vd:.2f} | {fls} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.table:
        with open(args.table, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    t = time.time()
    main()
    print(f"# peers took {time.time() - t:.0f} s", file=sys.stderr)
