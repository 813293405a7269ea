# A new user's own small Llama folder (round 10, benches/RESULTS.md): config.json and one
# model.safetensors of random weights in bf16, f16 or f32, no tokenizer (copy one in).
# Usage: python3 mkhf.py OUT_DIR bf16|f16|f32 VOCAB [tied]   (standard library only)
import json, random, struct, sys, os
from array import array
out, dtype = sys.argv[1], sys.argv[2]
L, H, QH, KH, HD, FF, V = 4, 256, 8, 2, 32, 688, int(sys.argv[3])
tied = len(sys.argv) > 4 and sys.argv[4] == "tied"
os.makedirs(out, exist_ok=True)
random.seed(1)
def mat(r, c, s): return [random.uniform(-s, s) for _ in range(r*c)], [r, c]
def ones(n): return [1.0]*n, [n]
t = {}
t["model.embed_tokens.weight"] = mat(V, H, 1.0)
for l in range(L):
    p = f"model.layers.{l}."
    t[p+"input_layernorm.weight"] = ones(H)
    t[p+"post_attention_layernorm.weight"] = ones(H)
    t[p+"self_attn.q_proj.weight"] = mat(QH*HD, H, H**-0.5)
    t[p+"self_attn.k_proj.weight"] = mat(KH*HD, H, H**-0.5)
    t[p+"self_attn.v_proj.weight"] = mat(KH*HD, H, H**-0.5)
    t[p+"self_attn.o_proj.weight"] = mat(H, QH*HD, (QH*HD)**-0.5)
    t[p+"mlp.gate_proj.weight"] = mat(FF, H, H**-0.5)
    t[p+"mlp.up_proj.weight"] = mat(FF, H, H**-0.5)
    t[p+"mlp.down_proj.weight"] = mat(H, FF, FF**-0.5)
t["model.norm.weight"] = ones(H)
if not tied: t["lm_head.weight"] = mat(V, H, H**-0.5)
def enc(vals):
    if dtype == "f16": return struct.pack(f"<{len(vals)}e", *vals), "F16"
    if dtype == "f32": return array("f", vals).tobytes(), "F32"
    b = array("f", vals).tobytes(); return b"".join(b[i+2:i+4] for i in range(0, len(b), 4)), "BF16"
hdr, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
for k in sorted(t):
    vals, shape = t[k]; b, dt = enc(vals)
    hdr[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off+len(b)]}; off += len(b); blobs.append(b)
h = json.dumps(hdr).encode(); h += b" " * ((8 - len(h) % 8) % 8)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]
cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H,
  "intermediate_size": FF, "num_hidden_layers": L, "num_attention_heads": QH,
  "num_key_value_heads": KH, "head_dim": HD, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
  "vocab_size": V, "tie_word_embeddings": tied, "max_position_embeddings": 2048,
  "bos_token_id": 0, "eos_token_id": 1, "torch_dtype": {"bf16":"bfloat16","f16":"float16","f32":"float32"}[dtype],
  "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "rope_scaling": None}
json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2)
