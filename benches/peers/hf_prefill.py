#!/usr/bin/env python3
"""Hugging Face transformers' eager prefill, timed the way issue 12's target means it: one
batched forward of `--batch` rows x `--prompt` random tokens (no KV cache, the last
token's logits only), random bf16 weights of the `--like` shape (hf_decode.py's SHAPES),
after `--warm` untimed forwards of the same batch (cuBLAS handles, kernel choices, the
caching allocator's pools), then `--reps` timed forwards (wall clock around a
synchronisation each); the median and the best in tokens/s. hf_decode.py times one cold
forward into a static cache instead (the first call of the process), which is what the
earlier calls' 39-80k tok/s measured. Attention: `--attn sdpa` (transformers' default)
and/or `eager` (matmul + softmax), each a line.

    python3 benches/peers/hf_prefill.py --like smollm2-135m --batch 16 --prompt 4096 \
        --attn sdpa,eager --json hf-prefill.jsonl
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_decode import SHAPES  # noqa: E402
# The peers' argument checks (a bad value is argparse's usage error, a missing torch one line).
from peer_args import need_torch, need_transformers, whole, writable  # noqa: E402

# Imported by main() once the arguments are checked (need_torch): --help and a bad value
# need no PyTorch.
torch = None


def build(like, attn):
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(rms_norm_eps=1e-5, **SHAPES[like])
    cfg._attn_implementation = attn
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    return model.eval()


def forward_s(model, ids):
    with torch.no_grad():
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model(input_ids=ids, use_cache=False, logits_to_keep=1)
        _ = out.logits[:, -1].argmax(-1)
        torch.cuda.synchronize()
        return time.perf_counter() - t0


def main():
    global torch
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--like", default="smollm2-135m", choices=sorted(SHAPES))
    ap.add_argument("--batch", type=whole(1), default=16, help="rows of each forward")
    ap.add_argument("--prompt", type=whole(1), default=4096, help="tokens of each row")
    ap.add_argument("--attn", default="sdpa", help="sdpa and/or eager, e.g. sdpa,eager")
    # The first forward is the cold one, so 1 is the least (0 ran the same as 1).
    ap.add_argument("--warm", type=whole(1), default=2, help="untimed forwards, the cold one first")
    # 0 timed forwards ended in statistics.median's StatisticsError after the warm-up.
    ap.add_argument("--reps", type=whole(1), default=5, help="timed forwards")
    ap.add_argument("--json", type=writable, help="JSON lines of every row (appended)")
    a = ap.parse_args()
    bad = [x for x in a.attn.split(",") if x not in ("sdpa", "eager")]
    if bad:
        ap.error(f"argument --attn: `{bad[0]}` in `{a.attn}`: allowed sdpa, eager (comma list)")
    torch = need_torch()
    transformers = need_transformers()
    tokens = a.batch * a.prompt
    for attn in a.attn.split(","):
        torch.manual_seed(0)
        model = build(a.like, attn)
        ids = torch.randint(0, model.config.vocab_size, (a.batch, a.prompt), device="cuda")
        try:
            cold = forward_s(model, ids)
            for _ in range(a.warm - 1):
                forward_s(model, ids)
            times = [forward_s(model, ids) for _ in range(a.reps)]
        except torch.OutOfMemoryError as e:
            print(f"{attn}: out of memory ({e})", flush=True)
            del model
            torch.cuda.empty_cache()
            continue
        med = statistics.median(times)
        r = dict(like=a.like, batch=a.batch, prompt=a.prompt, attn=attn,
                 transformers=transformers.__version__, torch=torch.__version__,
                 cold_s=cold, times_s=times, median_tok_s=tokens / med,
                 best_tok_s=tokens / min(times), cold_tok_s=tokens / cold,
                 peak_gib=torch.cuda.max_memory_allocated() / 2**30)
        print(f"hf prefill {attn} {a.batch}x{a.prompt}: median {med * 1e3:.1f} ms = "
              f"{r['median_tok_s']:.0f} tok/s, best {r['best_tok_s']:.0f}, cold first call "
              f"{cold * 1e3:.1f} ms = {r['cold_tok_s']:.0f} tok/s "
              f"(transformers {transformers.__version__}, peak {r['peak_gib']:.1f} GiB)",
              flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(r) + "\n")
        del model, ids
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


if __name__ == "__main__":
    main()
