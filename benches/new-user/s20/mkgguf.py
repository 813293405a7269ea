# A GGUF written by hand in llama.cpp's layout from an f16 folder of mkhf.py (round 10):
# Q/K rows permuted for interleaved RoPE, norms F32, the folder's tokenizer.json as a gpt2
# vocabulary padded with [PAD<i>] tokens to vocab_size (as convert_hf_to_gguf.py pads).
# Usage: python3 mkgguf.py HF_F16_DIR OUT.gguf   (standard library only)
import json, struct, sys
from array import array
src, out = sys.argv[1], sys.argv[2]
cfg = json.load(open(f"{src}/config.json")); tok = json.load(open(f"{src}/tokenizer.json"))
raw = open(f"{src}/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]; hdr = json.loads(raw[8:8+n]); base = 8 + n
def get(name):
    t = hdr[name]; a, b = t["data_offsets"]; assert t["dtype"] == "F16"
    return raw[base+a:base+b], t["shape"]
H, QH, KH, HD = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
def permute(b, heads, cols):
    rows = [b[i*cols*2:(i+1)*cols*2] for i in range(heads*HD)]; out = []
    half = HD // 2
    for h in range(heads):
        for i in range(half):
            out.append(rows[h*HD + i]); out.append(rows[h*HD + half + i])
    return b"".join(out)
def f16_to_f32(b): return array("f", struct.unpack(f"<{len(b)//2}e", b)).tobytes()
tensors = []  # (name, dims(ne order), type, bytes)
def add(gname, hname, kind="mat", heads=None):
    b, shape = get(hname)
    if heads: b = permute(b, heads, shape[1])
    if kind == "norm": tensors.append((gname, [shape[0]], 0, f16_to_f32(b)))
    else: tensors.append((gname, [shape[1], shape[0]], 1, b))
add("token_embd.weight", "model.embed_tokens.weight")
for l in range(cfg["num_hidden_layers"]):
    p = f"model.layers.{l}."
    add(f"blk.{l}.attn_norm.weight", p+"input_layernorm.weight", "norm")
    add(f"blk.{l}.attn_q.weight", p+"self_attn.q_proj.weight", heads=QH)
    add(f"blk.{l}.attn_k.weight", p+"self_attn.k_proj.weight", heads=KH)
    add(f"blk.{l}.attn_v.weight", p+"self_attn.v_proj.weight")
    add(f"blk.{l}.attn_output.weight", p+"self_attn.o_proj.weight")
    add(f"blk.{l}.ffn_norm.weight", p+"post_attention_layernorm.weight", "norm")
    add(f"blk.{l}.ffn_gate.weight", p+"mlp.gate_proj.weight")
    add(f"blk.{l}.ffn_up.weight", p+"mlp.up_proj.weight")
    add(f"blk.{l}.ffn_down.weight", p+"mlp.down_proj.weight")
add("output_norm.weight", "model.norm.weight", "norm")
if "lm_head.weight" in hdr: add("output.weight", "lm_head.weight")
def s(x): x = x.encode(); return struct.pack("<Q", len(x)) + x
def kv(k, t, v):
    b = s(k) + struct.pack("<I", t)
    if t == 8: return b + s(v)
    if t == 4: return b + struct.pack("<I", v)
    if t == 6: return b + struct.pack("<f", v)
    if t == 9:
        et, vals = v; b += struct.pack("<IQ", et, len(vals))
        for x in vals: b += s(x) if et == 8 else struct.pack("<i", x)
        return b
vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
for a in tok.get("added_tokens", []): pass
toks = [t for t, _ in vocab]; types = [3 if t.startswith("<") and t.endswith(">") else 1 for t in toks]
while len(toks) < cfg["vocab_size"]: types.append(5); toks.append(f"[PAD{len(toks)}]")
meta = [kv("general.architecture", 8, "llama"), kv("general.name", 8, "my-gguf"),
  kv("llama.context_length", 4, cfg["max_position_embeddings"]), kv("llama.embedding_length", 4, H),
  kv("llama.block_count", 4, cfg["num_hidden_layers"]), kv("llama.feed_forward_length", 4, cfg["intermediate_size"]),
  kv("llama.attention.head_count", 4, QH), kv("llama.attention.head_count_kv", 4, KH),
  kv("llama.rope.dimension_count", 4, HD), kv("llama.rope.freq_base", 6, cfg["rope_theta"]),
  kv("llama.attention.layer_norm_rms_epsilon", 6, cfg["rms_norm_eps"]), kv("llama.vocab_size", 4, cfg["vocab_size"]),
  kv("tokenizer.ggml.model", 8, "gpt2"), kv("tokenizer.ggml.tokens", 9, (8, toks)),
  kv("tokenizer.ggml.token_type", 9, (5, types)), kv("tokenizer.ggml.merges", 9, (8, [])),
  kv("tokenizer.ggml.bos_token_id", 4, cfg["bos_token_id"]), kv("tokenizer.ggml.eos_token_id", 4, cfg["eos_token_id"])]
infos, off = b"", 0
for name, dims, t, b in tensors:
    infos += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", t, off)
    off += len(b); off += (-off) % 32
head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)) + b"".join(meta) + infos
head += b"\0" * ((-len(head)) % 32)
with open(out, "wb") as f:
    f.write(head)
    for name, dims, t, b in tensors:
        f.write(b); f.write(b"\0" * ((-len(b)) % 32))
