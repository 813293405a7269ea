#!/usr/bin/env python3
"""PyTorch peers for moa's decode benchmark (examples/attention_bench.rs), run in the same
device call: dense SDPA over a full-length cache, and FlexAttention with moa's exact
per-head mask (sink + window of each query head, from the spans file the Rust benchmark
writes) over the same full-length cache. One new query per row at position N - 1.

Timing as moa's: `--launches` calls captured in a CUDA graph, `--replays` timed replays,
median per call; inputs rotate over enough copies that a replay cannot be served from L2.

    python3 benches/peers/decode_peers.py --spans spans.json --batch 16,4 \
        --moa results.jsonl --json peers.jsonl

With `--producer`, dense SDPA is also timed where a model runs it, as moa's
`attention_bench --producer`: each graph call first writes the step's Q (from an f32 QKV
buffer of [B, q_heads + 2 kv_heads, D]) and the current token's K/V slot, then runs SDPA;
the writes alone are timed too, and the JSON line `impl: sdpa_producer` holds the pair's
time minus theirs (what SDPA adds to a decode step).

With `--same-bytes MOA_JSONL`, for every distinct byte count of moa's lines there (filtered
by `--same-bytes-batch`), times what a plain read of that many bytes reaches in the same
call: dense SDPA over a full cache of the same bytes (N' = bytes / (B · kv_heads · D · 4)
tokens, `impl: sdpa_same_bytes`), a device copy moving that many bytes (half read, half
written: `impl: copy_same_bytes`) and a sum reading them (`impl: sum_same_bytes`); each
rate is those bytes / time.

With `--moa`, also prints the combined table: moa's read rate over the bytes its plan
needs against dense SDPA's read rate over the full cache, and moa's wall-clock against
SDPA's.
"""
import argparse
import json
import math
import os
import sys

# The peers' argument checks, run before PyTorch is imported (peer_args.py).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_args import need_torch, readable, whole, wholes, writable  # noqa: E402

# Imported by main() once the arguments are checked (need_torch): --help and a bad value
# need no PyTorch.
torch = F = None


def time_graph(fn, launches, replays):
    """Median microseconds per call of fn(i), i = 0..launches-1, replayed as one graph."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for i in range(3):
            fn(i)
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for i in range(launches):
            fn(i)
    graph.replay()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(replays):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000.0 / launches)
    times.sort()
    return times[len(times) // 2]


def copies_for(nbytes):
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    return max(1, min(8, math.ceil(3 * l2 / max(nbytes, 1))))


def sdpa_backend():
    """The SDPA backends to try, flash first (kernels.md's 'dense SDPA flash')."""
    from torch.nn.attention import SDPBackend

    return [
        ("flash", [SDPBackend.FLASH_ATTENTION]),
        ("efficient", [SDPBackend.EFFICIENT_ATTENTION]),
        ("cudnn", [SDPBackend.CUDNN_ATTENTION]),
        ("default", None),
    ]


def main():
    global torch, F
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spans", required=True, type=readable,
                    help="the spans file (JSON) the Rust benchmark writes")
    ap.add_argument("--batch", default=[16, 4], type=wholes(1), help="batch sizes, e.g. 16,4")
    ap.add_argument("--launches", type=whole(1), default=20, help="calls per CUDA graph")
    ap.add_argument("--replays", type=whole(1), default=10, help="timed graph replays")
    ap.add_argument("--flex-layers", default="all", help="'all', 'none' or a comma list")
    ap.add_argument("--json", type=writable, help="JSON lines of every row (written anew)")
    ap.add_argument("--moa", type=readable, help="moa's results (JSON lines) for the combined table")
    ap.add_argument("--producer", action="store_true",
                    help="also time SDPA after a kernel writing Q and the K/V slot (impl sdpa_producer)")
    ap.add_argument("--same-bytes", type=readable, help="moa's results (JSON lines): time SDPA, a copy and a sum on each byte count")
    ap.add_argument("--same-bytes-batch", default=[4], type=wholes(1),
                    help="batches of --same-bytes lines to take")
    args = ap.parse_args()
    if args.flex_layers not in ("all", "none"):
        try:
            wholes(0)(args.flex_layers)
        except argparse.ArgumentTypeError as e:
            ap.error(f"argument --flex-layers: {e}, or `all` or `none`")
    try:
        with open(args.spans) as f:
            configs = json.load(f)
        if not isinstance(configs, list):
            raise TypeError(f"a JSON {type(configs).__name__}, not a list")
        for c in configs:
            for k in ("model", "prompt", "q_heads", "kv_heads", "head_dim", "n_tokens", "layers"):
                c[k]
    except (ValueError, TypeError, KeyError) as e:
        ap.error(f"argument --spans: `{args.spans}` is not a spans file (a JSON list of shapes "
                 f"with model, prompt, q_heads, kv_heads, head_dim, n_tokens, layers): "
                 f"{type(e).__name__}: {e}")
    torch = need_torch()
    F = torch.nn.functional
    from torch.nn.attention import sdpa_kernel
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    torch._dynamo.config.cache_size_limit = 1024
    flex = torch.compile(flex_attention, dynamic=False)
    dev = torch.device("cuda")
    dtype = torch.bfloat16
    batches = args.batch
    out = open(args.json, "w") if args.json else None
    rows_out = []

    def emit(rec):
        rows_out.append(rec)
        if out:
            out.write(json.dumps(rec) + "\n")
            out.flush()

    print("| impl | model | B | prompt | layer | µs | TB/s (bytes read) | TB/s (plan bytes) | backend |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cfg in configs:
        hq, hkv, d, n = cfg["q_heads"], cfg["kv_heads"], cfg["head_dim"], cfg["n_tokens"]
        gqa = hq != hkv
        for b in batches:
            dense_bytes = b * hkv * n * d * 2 * 2
            ncopy = copies_for(dense_bytes)
            qs = [torch.randn(b, hq, 1, d, device=dev, dtype=dtype) for _ in range(ncopy)]
            ks = [torch.rand(b, hkv, n, d, device=dev, dtype=dtype) * 2 - 1 for _ in range(ncopy)]
            vs = [torch.rand(b, hkv, n, d, device=dev, dtype=dtype) * 2 - 1 for _ in range(ncopy)]
            # Dense SDPA.
            us, backend = None, None
            for name, backends in sdpa_backend():
                try:
                    def run(i, backends=backends):
                        j = i % ncopy
                        if backends is None:
                            return F.scaled_dot_product_attention(qs[j], ks[j], vs[j], enable_gqa=gqa)
                        with sdpa_kernel(backends):
                            return F.scaled_dot_product_attention(qs[j], ks[j], vs[j], enable_gqa=gqa)
                    us = time_graph(run, args.launches, args.replays)
                    backend = name
                    break
                except Exception as e:  # a backend that cannot take these shapes
                    print(f"sdpa {name}: {type(e).__name__}: {str(e)[:120]}", file=sys.stderr)
            rate = dense_bytes / (us * 1e-6) / 1e12
            print(f"| sdpa dense | {cfg['model']} | {b} | {cfg['prompt']} | all | {us:.1f} | {rate:.2f} | | {backend} |")
            emit({"impl": "sdpa", "model": cfg["model"], "batch": b, "prompt": cfg["prompt"],
                  "n_tokens": n, "us": us, "kv_bytes": dense_bytes, "tbps": rate, "backend": backend})
            if args.producer and backend is not None:
                backends = dict(sdpa_backend())[backend]
                qkv = torch.rand(b, hq + 2 * hkv, d, device=dev, dtype=torch.float32) * 2 - 1

                def produce(j):
                    qs[j].copy_(qkv[:, :hq].unsqueeze(2))
                    ks[j][:, :, n - 1].copy_(qkv[:, hq:hq + hkv])
                    vs[j][:, :, n - 1].copy_(qkv[:, hq + hkv:])

                def pair(i, backends=backends):
                    j = i % ncopy
                    produce(j)
                    if backends is None:
                        return F.scaled_dot_product_attention(qs[j], ks[j], vs[j], enable_gqa=gqa)
                    with sdpa_kernel(backends):
                        return F.scaled_dot_product_attention(qs[j], ks[j], vs[j], enable_gqa=gqa)
                p_us = time_graph(lambda i: produce(i % ncopy), args.launches, args.replays)
                pair_us = time_graph(pair, args.launches, args.replays)
                net = pair_us - p_us
                prate = dense_bytes / (net * 1e-6) / 1e12
                print(f"| sdpa after producer | {cfg['model']} | {b} | {cfg['prompt']} | all | {net:.1f} | {prate:.2f} | | {backend} (pair {pair_us:.1f}, producer {p_us:.1f}) |")
                emit({"impl": "sdpa_producer", "model": cfg["model"], "batch": b, "prompt": cfg["prompt"],
                      "n_tokens": n, "us": net, "pair_us": pair_us, "producer_us": p_us,
                      "kv_bytes": dense_bytes, "tbps": prate, "backend": backend})
            # FlexAttention with each layer's per-head mask, same full-length cache.
            if args.flex_layers == "none":
                continue
            keep = None if args.flex_layers == "all" else {int(x) for x in args.flex_layers.split(",")}
            sink = torch.zeros(hq, device=dev, dtype=torch.int32)
            window = torch.zeros(hq, device=dev, dtype=torch.int32)
            t = n - 1

            def mask_mod(bb, h, q_idx, kv_idx):
                return (kv_idx <= t) & ((kv_idx < sink[h]) | (t - kv_idx < window[h]))

            for layer in cfg["layers"]:
                if keep is not None and layer["layer"] not in keep:
                    continue
                sp = torch.tensor(layer["span"], device=dev, dtype=torch.int32)
                sk = torch.tensor(layer["sink"], device=dev, dtype=torch.int32)
                sink.copy_(sk)
                window.copy_(sp - sk)
                bm = create_block_mask(mask_mod, B=None, H=hq, Q_LEN=1, KV_LEN=n, device="cuda")
                plan_bytes = b * sum(layer["segment_span"]) * d * 2 * 2
                try:
                    def run_flex(i, bm=bm):
                        j = i % ncopy
                        return flex(qs[j], ks[j], vs[j], block_mask=bm, enable_gqa=gqa)
                    fus = time_graph(run_flex, args.launches, args.replays)
                except Exception as e:
                    print(f"flex layer {layer['layer']}: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)
                    continue
                print(f"| flex | {cfg['model']} | {b} | {cfg['prompt']} | {layer['layer']} | {fus:.1f} | "
                      f"| {plan_bytes / (fus * 1e-6) / 1e12:.2f} | |")
                emit({"impl": "flex", "model": cfg["model"], "batch": b, "prompt": cfg["prompt"],
                      "n_tokens": n, "layer": layer["layer"], "us": fus, "plan_kv_bytes": plan_bytes,
                      "plan_tbps": plan_bytes / (fus * 1e-6) / 1e12})
            del qs, ks, vs
            torch.cuda.empty_cache()

    if args.same_bytes:
        same_bytes(args, configs, dtype, dev, emit)

    if args.moa:
        sdpa = {(r["model"], r["batch"], r["prompt"]): r for r in rows_out if r["impl"] == "sdpa"}
        flexr = {(r["model"], r["batch"], r["prompt"], r["layer"]): r for r in rows_out if r["impl"] == "flex"}
        moa = [json.loads(line) for line in open(args.moa) if line.strip()]
        print()
        print("| model | B | prompt | layer | variant | chunk | moa µs | moa TB/s | SDPA dense µs | SDPA TB/s | "
              "moa rate / SDPA rate | speedup vs SDPA | moa dense µs | flex µs |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in moa:
            s = sdpa.get((r["model"], r["batch"], r["prompt"]))
            if s is None:
                continue
            f = flexr.get((r["model"], r["batch"], r["prompt"], r["layer"]))
            print(f"| {r['model']} | {r['batch']} | {r['prompt']} | {r['layer']} | {r['variant']} | {r['chunk']} | "
                  f"{r['us']:.1f} | {r['tbps']:.2f} | {s['us']:.1f} | {s['tbps']:.2f} | "
                  f"{r['tbps'] / s['tbps']:.2f} | {s['us'] / r['us']:.2f} | {r['dense_us']:.1f} | "
                  f"{'' if f is None else format(f['us'], '.1f')} |")


def same_bytes(args, configs, dtype, dev, emit):
    """SDPA dense, a copy and a sum on each byte count of moa's lines (see the module doc)."""
    batches = set(args.same_bytes_batch)
    shape = {c["model"]: c for c in configs}
    seen = set()
    for line in open(args.same_bytes):
        if not line.strip():
            continue
        r = json.loads(line)
        key = (r["model"], r["batch"], r["kv_bytes"])
        if r["batch"] not in batches or r["model"] not in shape or key in seen:
            continue
        seen.add(key)
        c = shape[r["model"]]
        b, hq, hkv, d = r["batch"], c["q_heads"], c["kv_heads"], c["head_dim"]
        nbytes = r["kv_bytes"]
        n = max(1, round(nbytes / (b * hkv * d * 4)))
        ncopy = copies_for(nbytes)
        qs = [torch.randn(b, hq, 1, d, device=dev, dtype=dtype) for _ in range(ncopy)]
        ks = [torch.rand(b, hkv, n, d, device=dev, dtype=dtype) for _ in range(ncopy)]
        vs = [torch.rand(b, hkv, n, d, device=dev, dtype=dtype) for _ in range(ncopy)]
        from torch.nn.attention import SDPBackend, sdpa_kernel

        def run(i):
            j = i % ncopy
            with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                return F.scaled_dot_product_attention(qs[j], ks[j], vs[j], enable_gqa=hq != hkv)
        sdpa_bytes = b * hkv * n * d * 4
        us = time_graph(run, args.launches, args.replays)
        base = {"model": r["model"], "batch": b, "prompt": r["prompt"], "layer": r["layer"], "kv_bytes": nbytes}
        emit({**base, "impl": "sdpa_same_bytes", "n_tokens": n, "us": us, "bytes": sdpa_bytes,
              "tbps": sdpa_bytes / (us * 1e-6) / 1e12})
        del qs, ks, vs
        half = nbytes // 4  # bf16 elements in half the bytes
        src = [torch.rand(half, device=dev, dtype=dtype) for _ in range(ncopy)]
        dst = [torch.empty_like(x) for x in src]
        us = time_graph(lambda i: dst[i % ncopy].copy_(src[i % ncopy]), args.launches, args.replays)
        emit({**base, "impl": "copy_same_bytes", "us": us, "bytes": 4 * half, "tbps": 4 * half / (us * 1e-6) / 1e12})
        del src, dst
        full = [torch.rand(nbytes // 2, device=dev, dtype=dtype) for _ in range(ncopy)]
        us = time_graph(lambda i: full[i % ncopy].sum(dtype=torch.float32), args.launches, args.replays)
        emit({**base, "impl": "sum_same_bytes", "us": us, "bytes": nbytes, "tbps": nbytes / (us * 1e-6) / 1e12})
        del full
        torch.cuda.empty_cache()
        print(f"same bytes {r['model']} B={b} {nbytes / 1e6:.1f} MB done", file=sys.stderr)


if __name__ == "__main__":
    main()
