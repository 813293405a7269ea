#!/usr/bin/env python3
"""Checks moa's llama3 RoPE scaling against transformers' own (the device's PyTorch).

moa's `model::config::tests::llama3_scaling_keeps_high_divides_low_and_blends_between`
asserts, to 1e-9 relative, that `LlamaConfig::rope_inv_freq` for Llama-3.2-1B's RoPE
(theta 500 000, head_dim 64, llama3 factor 32, low 1, high 4, original 8192) keeps pairs
0..14, divides pairs 18..31 by 32 and gives the three blended pairs below. This script
asks transformers' `ROPE_INIT_FUNCTIONS["llama3"]` for the same config and checks it
against the same values, so the two agree transitively. Prints one JSON line; exit 1 on
a mismatch.
"""
import argparse
import json
import sys

# No options, but `--help` says what it does, and a bad argument is refused, before torch
# and transformers are imported: a machine without them (a CPU-only one) got a
# ModuleNotFoundError traceback for either (round 38 of the new user's journey).
argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
try:
    import torch
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
except ImportError as e:
    sys.stderr.write(f"{sys.argv[0]}: this check needs PyTorch and transformers ({e}); run it "
                     "on the GPU machine, which has both (`pip install torch transformers`)\n")
    sys.exit(2)

BLENDED = {15: 0.001290547928209264, 16: 0.00042955679655936815, 17: 9.70828780262767e-05}
scaling = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
           "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
kw = dict(hidden_size=2048, num_attention_heads=32, num_key_value_heads=8, head_dim=64,
          max_position_embeddings=131072)
try:  # transformers 5 keeps RoPE settings in `rope_parameters`
    cfg = LlamaConfig(**kw, rope_parameters={**scaling, "rope_theta": 500000.0})
except TypeError:
    cfg = LlamaConfig(**kw, rope_theta=500000.0, rope_scaling=scaling)
inv, attention_factor = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
inv = inv.to(torch.float64).tolist()
plain = [500000.0 ** (-(2 * j) / 64) for j in range(32)]
worst = 0.0
for j in range(32):
    want = plain[j] if j <= 14 else BLENDED.get(j, plain[j] / 32.0)
    worst = max(worst, abs(inv[j] - want) / want)
# transformers computes in float32 (torch.arange(...).float()): 1e-6 relative is its rounding.
ok = worst <= 2e-6 and attention_factor == 1.0
print(json.dumps({"pairs": len(inv), "worst_rel_err": worst, "attention_factor": attention_factor,
                  "ok": ok}))
sys.exit(0 if ok else 1)
