# A GGUF written by hand in llama.cpp's layout from an f16 folder of benches/new-user/s20/mkhf.py:
# Q/K rows permuted for interleaved RoPE, norms F32, the folder's tokenizer.json as a gpt2
# vocabulary padded with [PAD<i>] tokens to vocab_size (as convert_hf_to_gguf.py pads).
# Round 11 (s22-fresh): K-quantized as llama.cpp's Q4_K_M mixes them: Q6_K for the
# embedding and V, Q4_K for the other matrices whose rows are whole 256-weight
# super-blocks, F16 for the rest (ggml's rule); `bad` as a third argument writes ffn_down
# (rows of 688) as Q4_K anyway, a file ggml itself refuses.
# Usage: python3 mkgguf_k.py HF_F16_DIR OUT.gguf [bad]   (standard library only; a few s)
import json, struct, sys
from array import array
src, out = sys.argv[1], sys.argv[2]
bad = len(sys.argv) > 3 and sys.argv[3] == "bad"
def f16(x): return struct.pack("<e", x)
def q4_k(vals):
    o = bytearray()
    for b0 in range(0, len(vals), 256):
        x = vals[b0:b0+256]; subs = [x[j*32:(j+1)*32] for j in range(8)]
        mins = [min(0.0, min(s)) for s in subs]; scl = [(max(s) - m) / 15 for s, m in zip(subs, mins)]
        d = max(scl) / 63 or 1e-8; dmin = max(-m for m in mins) / 63 or 1e-8
        d = struct.unpack("<e", f16(d))[0] or 6e-8; dmin = struct.unpack("<e", f16(dmin))[0] or 6e-8
        sc = [min(63, round(s / d)) for s in scl]; mn = [min(63, round(-m / dmin)) for m in mins]
        packed = [0] * 12
        for j in range(8):
            if j < 4: packed[j] |= sc[j]; packed[j+4] |= mn[j]
            else:
                packed[j+4] = (sc[j] & 15) | ((mn[j] & 15) << 4)
                packed[j-4] |= (sc[j] >> 4) << 6; packed[j] |= (mn[j] >> 4) << 6
        q = []
        for j in range(8):
            step = sc[j] * d
            q.append([max(0, min(15, round((v + mn[j] * dmin) / step))) if step else 0 for v in subs[j]])
        qs = bytearray()
        for k in range(4):
            qs += bytes(q[2*k][l] | (q[2*k+1][l] << 4) for l in range(32))
        o += f16(d) + f16(dmin) + bytes(packed) + qs
    return bytes(o)
def q6_k(vals):
    o = bytearray()
    for b0 in range(0, len(vals), 256):
        x = vals[b0:b0+256]
        scl = [max(abs(v) for v in x[i*16:(i+1)*16]) / 31 for i in range(16)]
        d = struct.unpack("<e", f16(max(scl) / 127 or 1e-8))[0] or 6e-8
        sc = [max(-128, min(127, round(s / d))) for s in scl]
        q = [max(0, min(63, round(v / (sc[i // 16] * d)) + 32)) if sc[i // 16] else 32 for i, v in enumerate(x)]
        ql = bytearray(128); qh = bytearray(64)
        for h in range(2):
            n = 128 * h
            for l in range(32):
                q1, q2, q3, q4 = q[n+l], q[n+l+32], q[n+l+64], q[n+l+96]
                ql[64*h + l] = (q1 & 15) | ((q3 & 15) << 4); ql[64*h + l + 32] = (q2 & 15) | ((q4 & 15) << 4)
                qh[32*h + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
        o += bytes(ql) + bytes(qh) + struct.pack("<16b", *sc) + f16(d)
    return bytes(o)
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
    else:
        vals = list(struct.unpack(f"<{len(b)//2}e", b)); k6 = gname == "token_embd.weight" or "attn_v" in gname
        if shape[1] % 256 == 0 or (bad and "ffn_down" in gname):
            if shape[1] % 256: vals = vals[:len(vals) // 256 * 256]
            tensors.append((gname, [shape[1], shape[0]], 14 if k6 else 12, q6_k(vals) if k6 else q4_k(vals)))
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
