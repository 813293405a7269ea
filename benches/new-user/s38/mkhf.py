#!/usr/bin/env python3
"""Tiny Llama Hugging Face folders in pure Python (no numpy, no safetensors package), for
round 22's config.json / dtype / shard variants. Every weight is k/64 with |k| <= 16, so
F32, F16 and BF16 hold the same values: every variant of one seed is the same model, and
`moa generate` must print the same greedy tokens for each.

usage: mkhf.py OUT VARIANT [SEED]
  tokenizer.json is copied from $BASE (a `moa model random` folder: byte-level, 259 tokens).
VARIANTS: f32 f16 bf16 untied (lm_head = embed copy) tied-with-lmhead sharded
  sharded-missing (index names a shard that is absent) shard-notindexed (a tensor in no
  index entry) wrong-shape wrong-dtype (I16 q_proj) rope-llama3 rope-linear rope-yarn
  no-tie-key (tied weights, key absent) torch-dtype-f16 (bf16 tensors, torch_dtype float16)
  nan-weight dup-tensor (one tensor in two shards, no index)
"""
import json, os, random, shutil, struct, sys

HIDDEN, LAYERS, QH, KVH, HD, FFN, VOCAB = 64, 2, 4, 2, 16, 128, 259


def specs():
    s = [("model.embed_tokens.weight", [VOCAB, HIDDEN]), ("model.norm.weight", [HIDDEN])]
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        s += [
            (p + "input_layernorm.weight", [HIDDEN]),
            (p + "self_attn.q_proj.weight", [QH * HD, HIDDEN]),
            (p + "self_attn.k_proj.weight", [KVH * HD, HIDDEN]),
            (p + "self_attn.v_proj.weight", [KVH * HD, HIDDEN]),
            (p + "self_attn.o_proj.weight", [HIDDEN, QH * HD]),
            (p + "post_attention_layernorm.weight", [HIDDEN]),
            (p + "mlp.gate_proj.weight", [FFN, HIDDEN]),
            (p + "mlp.up_proj.weight", [FFN, HIDDEN]),
            (p + "mlp.down_proj.weight", [HIDDEN, FFN]),
        ]
    return s


def values(rng, name, n):
    if name.endswith("norm.weight"):
        return [1.0 + rng.randint(-4, 4) / 64 for _ in range(n)]
    return [rng.randint(-16, 16) / 64 for _ in range(n)]


def encode(vals, dtype):
    if dtype == "F32":
        return struct.pack(f"<{len(vals)}f", *vals)
    if dtype == "F16":
        return struct.pack(f"<{len(vals)}e", *vals)
    if dtype == "BF16":
        raw = struct.pack(f"<{len(vals)}f", *vals)
        return b"".join(raw[i + 2 : i + 4] for i in range(0, len(raw), 4))
    if dtype == "I16":
        return struct.pack(f"<{len(vals)}h", *[int(v * 64) for v in vals])
    raise ValueError(dtype)


def write_st(path, tensors):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, off, blobs = {}, 0, []
    for name, dtype, shape, b in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    out, variant = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    shutil.copy(os.path.join(os.environ["BASE"], "tokenizer.json"), out)
    dtype = {"f32": "F32", "f16": "F16"}.get(variant, "BF16")
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "bos_token_id": 1,
        "eos_token_id": 2, "hidden_size": HIDDEN, "intermediate_size": FFN,
        "max_position_embeddings": 512, "num_attention_heads": QH, "num_hidden_layers": LAYERS,
        "num_key_value_heads": KVH, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": True, "torch_dtype": {"F32": "float32", "F16": "float16"}.get(dtype, "bfloat16"),
        "vocab_size": VOCAB,
    }
    tensors = []
    for name, shape in specs():
        n = 1
        for d in shape:
            n *= d
        v = values(rng, name, n)
        t = dtype
        if variant == "wrong-dtype" and name == "model.layers.1.self_attn.q_proj.weight":
            t = "I16"
        if variant == "wrong-shape" and name == "model.layers.1.mlp.up_proj.weight":
            shape, v = [FFN, HIDDEN // 2], v[: n // 2]
        if variant == "nan-weight" and name == "model.layers.0.mlp.down_proj.weight":
            v[5] = float("nan")
        tensors.append((name, t, shape, encode(v, t)))
    if variant in ("untied", "tied-with-lmhead"):
        emb = tensors[0]
        tensors.append(("lm_head.weight", emb[1], emb[2], emb[3]))
        config["tie_word_embeddings"] = variant == "tied-with-lmhead"
    if variant == "rope-llama3":
        config["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    if variant == "rope-linear":
        config["rope_scaling"] = {"type": "linear", "factor": 2.0}
    if variant == "rope-yarn":
        config["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0}
    if variant == "no-tie-key":
        del config["tie_word_embeddings"]
    if variant == "torch-dtype-f16":
        config["torch_dtype"] = "float16"
    if variant.startswith("sharded") or variant == "shard-notindexed" or variant == "dup-tensor":
        half = len(tensors) // 2
        parts = [tensors[:half], tensors[half:]]
        if variant == "dup-tensor":
            parts[1].append(parts[0][3])
        names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        for part, fname in zip(parts, names):
            write_st(os.path.join(out, fname), part)
        if variant != "dup-tensor":
            wm = {t[0]: names[i] for i, part in enumerate(parts) for t in part}
            if variant == "shard-notindexed":
                del wm[parts[1][0][0]]
            json.dump({"metadata": {"total_size": 0}, "weight_map": wm},
                      open(os.path.join(out, "model.safetensors.index.json"), "w"))
        if variant == "sharded-missing":
            os.remove(os.path.join(out, names[1]))
    else:
        write_st(os.path.join(out, "model.safetensors"), tensors)
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=1)


main()
