#!/usr/bin/env python3
"""Hugging Face transformers peer of `moa bench`, run in the same device call: the same
model shape (`--like`, as moa::model::random::like) with random bf16 weights, `--batch`
rows of `--prompt` random tokens, eager prefill, then greedy decode through a static KV
cache with the step compiled by `torch.compile(mode="reduce-overhead")` (CUDA graphs).
Dense attention (HF has no MoA plans).

    python3 benches/peers/hf_decode.py --like llama-2-7b --prompt 4096 --batch 16,32 \
        --new 32 --json hf.jsonl
    python3 benches/peers/hf_decode.py --like llama-3-8b --kv-heads 2 --prompt 4096 --batch 16

`--kv-heads N` gives the shape N KV heads (GQA groups of q_heads / N; 1 is MQA), as
`moa bench --kv-heads N`.

Timing as `moa bench`: prefill of all rows (one forward, wall clock around a
synchronisation); decode steps after three warm-up steps (compilation, graph recording),
the mean wall-clock per step including the next-token choice.

Largest batch (`--batch max`): HF's eager prefill of every row at once runs out of memory
long before the static cache does (at 50 x 4k rows of the 7B shape its MLP intermediate
alone is 4.2 GiB). With `--prefill-rows K` the prefill is timed on K rows in their own
static cache, which is then freed; the decode batch then gets a static cache of its own
(zeros, one eager step at position prompt - 1 allocates it) and decodes from position
`prompt`. A static-cache decode step reads all `max_cache_len` slots of every row
whatever they hold (SDPA over the whole cache, masked), so its time is that of a
prefilled cache; `max` = the rows whose static cache fits in the free memory after the
weights, less `--reserve-gib` (CUDA-graph pool, logits, workspace).
"""
import argparse
import gc
import json
import os
import sys
import time
import traceback

# The peers' argument checks, run before PyTorch is imported (peer_args.py).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_args import need_torch, need_transformers, nonnegative, readable, whole, wholes, writable  # noqa: E402

# Imported by main() once the arguments are checked (need_torch): --help and a bad value
# need no PyTorch.
torch = None


SHAPES = {
    "smollm2-135m": dict(num_hidden_layers=30, hidden_size=576, intermediate_size=1536,
                         num_attention_heads=9, num_key_value_heads=3, head_dim=64,
                         rope_theta=100000.0, vocab_size=49152, tie_word_embeddings=True,
                         max_position_embeddings=8192),
    "llama-2-7b": dict(num_hidden_layers=32, hidden_size=4096, intermediate_size=11008,
                       num_attention_heads=32, num_key_value_heads=32, head_dim=128,
                       rope_theta=10000.0, vocab_size=32000, tie_word_embeddings=False,
                       max_position_embeddings=16384),
    # Llama-3.2-1B's shape (its llama3 RoPE scaling left out: the timing does not depend on it).
    "llama-3.2-1b": dict(num_hidden_layers=16, hidden_size=2048, intermediate_size=8192,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                         rope_theta=500000.0, vocab_size=128256, tie_word_embeddings=True,
                         max_position_embeddings=131072),
    "llama-3.2-3b": dict(num_hidden_layers=28, hidden_size=3072, intermediate_size=8192,
                         num_attention_heads=24, num_key_value_heads=8, head_dim=128,
                         rope_theta=500000.0, vocab_size=128256, tie_word_embeddings=True,
                         max_position_embeddings=131072),
    "llama-3-8b": dict(num_hidden_layers=32, hidden_size=4096, intermediate_size=14336,
                       num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                       rope_theta=500000.0, vocab_size=128256, tie_word_embeddings=False,
                       max_position_embeddings=262144),
}


def build(like, kv_heads=None):
    from transformers import LlamaConfig, LlamaForCausalLM
    shape = dict(SHAPES[like])
    if kv_heads is not None:
        shape["num_key_value_heads"] = kv_heads
    cfg = LlamaConfig(rms_norm_eps=1e-5, **shape)
    cfg._attn_implementation = "sdpa"
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    model.eval()
    model.generation_config.eos_token_id = None
    return model


def static_cache(model, batch, length):
    from transformers import StaticCache
    try:
        return StaticCache(config=model.config, max_cache_len=length)
    except TypeError:
        return StaticCache(config=model.config, max_batch_size=batch, max_cache_len=length,
                           device="cuda", dtype=torch.bfloat16)


def kv_bytes_per_row(model, length):
    c = model.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    return 2 * c.num_hidden_layers * c.num_key_value_heads * head_dim * length * 2


def max_rows(model, prompt, new, reserve_gib, warm=3):
    """Rows whose bf16 static cache (and logits) fit in the free memory, less the reserve.

    With GQA (KV heads < query heads) transformers' SDPA path repeats one layer's K and V
    to every query head before the product (`repeat_kv`, sdpa_attention.py): a transient
    of 2 x q_heads x max_cache_len x head_dim bf16 per row, counted here (on the H200 the
    Llama-3-8B shape ran out of memory at 236 and 217 rows without it: 7.4 GiB asked).
    """
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info()
    c = model.config
    length = prompt + warm + new + 1
    per_row = kv_bytes_per_row(model, length) + c.vocab_size * 8
    if c.num_key_value_heads < c.num_attention_heads:
        one_layer = kv_bytes_per_row(model, length) // c.num_hidden_layers
        per_row += one_layer * c.num_attention_heads // c.num_key_value_heads
    return max(0, int((free - reserve_gib * 2**30) // per_row))


def prefill(model, ids, cache):
    prompt = ids.shape[1]
    with torch.no_grad():
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model(input_ids=ids, past_key_values=cache, use_cache=True,
                    cache_position=torch.arange(prompt, device="cuda"), logits_to_keep=1)
        tok = out.logits[:, -1].argmax(-1)
        torch.cuda.synchronize()
        return tok, time.perf_counter() - t0


def run(model, prompt, batch, new, warm=3, prefill_rows=None):
    vocab = model.config.vocab_size
    length = prompt + warm + new + 1
    k = batch if prefill_rows is None else min(prefill_rows, batch)
    ids = torch.randint(0, vocab, (k, prompt), device="cuda")
    if k < batch:
        small = static_cache(model, k, length)
        tok, prefill_s = prefill(model, ids, small)
        del small, ids
        torch.cuda.empty_cache()
        cache = static_cache(model, batch, length)
        tok = tok.repeat((batch + k - 1) // k)[:batch]
        with torch.no_grad():  # allocates the cache (zeros) outside the compiled step
            model(input_ids=tok[:, None], past_key_values=cache, use_cache=True,
                  cache_position=torch.tensor([prompt - 1], device="cuda"))
    else:
        cache = static_cache(model, batch, length)
        tok, prefill_s = prefill(model, ids, cache)
    with torch.no_grad():

        def step(tok, pos):
            o = model(input_ids=tok[:, None], past_key_values=cache, use_cache=True,
                      cache_position=pos)
            return o.logits[:, -1].argmax(-1)

        compiled = torch.compile(step, mode="reduce-overhead", fullgraph=True)
        pos = prompt
        t0 = time.perf_counter()
        for _ in range(warm):
            tok = compiled(tok, torch.tensor([pos], device="cuda")).clone()
            pos += 1
        torch.cuda.synchronize()
        warm_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(new):
            tok = compiled(tok, torch.tensor([pos], device="cuda")).clone()
            pos += 1
        _ = tok.cpu()
        step_s = (time.perf_counter() - t0) / new
    return dict(prefill_rows=k, prefill_s=prefill_s, prefill_tok_s=k * prompt / prefill_s,
                step_ms=step_s * 1e3, decode_tok_s=batch / step_s, warmup_s=warm_s)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--like", default="smollm2-135m", choices=sorted(SHAPES))
    ap.add_argument("--prompt", default=[1024], type=wholes(1), help="prompt lengths, e.g. 1024,4096")
    ap.add_argument("--batch", default=["1"], type=wholes(1, also=("max",)),
                    help="batch sizes, or `max` (the rows whose static cache fits)")
    ap.add_argument("--new", type=whole(1), default=32, help="timed decode steps")
    ap.add_argument("--prefill-rows", type=whole(1),
                    help="time the prefill on this many rows only (see the module doc)")
    ap.add_argument("--reserve-gib", type=nonnegative, default=5.0,
                    help="memory `--batch max` leaves free (GiB)")
    ap.add_argument("--kv-heads", type=int,
                    help="KV heads in place of the shape's (as `moa bench --kv-heads`); must "
                         "divide its query heads")
    ap.add_argument("--json", type=writable, help="JSON lines of every row (appended)")
    args = ap.parse_args()
    if args.kv_heads is not None:
        q = SHAPES[args.like]["num_attention_heads"]
        if args.kv_heads < 1 or q % args.kv_heads:
            ap.error(f"--kv-heads {args.kv_heads} does not divide the {q} query heads of "
                     f"--like {args.like}: allowed "
                     + ", ".join(str(n) for n in range(1, q + 1) if q % n == 0))
    global torch
    torch = need_torch()
    transformers = need_transformers()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, "
          f"{torch.cuda.get_device_name(0)}", file=sys.stderr)
    model = build(args.like, args.kv_heads)
    out = open(args.json, "a") if args.json else None
    print("| peer | prompt | batch | prefill s | prefill tok/s | step ms | decode tok/s |")
    print("|---|---|---|---|---|---|---|")
    for prompt in args.prompt:
        for b in map(str, args.batch):
            batch = (max_rows(model, prompt, args.new, args.reserve_gib) if b == "max"
                     else int(b))
            print(f"batch {b} -> {batch} rows", file=sys.stderr, flush=True)
            r = None
            for attempt in range(2 if b == "max" else 1):
                try:
                    r = run(model, prompt, batch, args.new, prefill_rows=args.prefill_rows)
                    break
                except Exception as e:  # report and go on (`max`: once more, 8% fewer rows)
                    traceback.print_exc()
                    print(f"| HF static+compile | {prompt} | {batch} | failed: "
                          f"{type(e).__name__}: {str(e)[:300]} |", flush=True)
                    batch = int(batch * 0.92)
                # Outside the except block: its traceback holds the frames (and the cache).
                torch._dynamo.reset()
                gc.collect()
                torch.cuda.empty_cache()
            if r is None:
                continue
            rows = f"{r['prefill_rows']} rows: " if r["prefill_rows"] < batch else ""
            print(f"| HF static+compile | {prompt} | {batch} | {rows}{r['prefill_s']:.3f} | "
                  f"{r['prefill_tok_s']:.0f} | {r['step_ms']:.3f} | {r['decode_tok_s']:.0f} |",
                  flush=True)
            if out:
                out.write(json.dumps(dict(kind="hf", like=args.like, prompt=prompt, batch=batch,
                                          kv_heads=model.config.num_key_value_heads,
                                          mode="static cache + torch.compile(reduce-overhead)",
                                          transformers=transformers.__version__, **r)) + "\n")
                out.flush()
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
