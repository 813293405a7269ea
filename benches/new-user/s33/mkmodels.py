# Hostile model inputs: truncated GGUF / safetensors, wrong dtypes, bad config.json.
import json, os, shutil, struct, sys
G = os.path.expanduser("~/.cache/moa/SmolLM2-135M-Instruct.Q4_1.gguf")
os.makedirs("m", exist_ok=True)
data = open(G, "rb").read()
for name, n in [("g-0", 0), ("g-3", 3), ("g-100", 100), ("g-4k", 4096), ("g-1m", 1 << 20), ("g-half", len(data) // 2), ("g-minus1", len(data) - 1)]:
    open(f"m/{name}.gguf", "wb").write(data[:n])
# a GGUF with its tensor count byte-flipped (huge)
b = bytearray(data); b[8:16] = struct.pack("<Q", 1 << 40); open("m/g-count.gguf", "wb").write(b)
st = open("rnd/model.safetensors", "rb").read()
hlen = struct.unpack("<Q", st[:8])[0]
hdr = json.loads(st[8:8 + hlen])
def hf(name, header=None, body=None, config=None, tok=True):
    d = f"m/{name}"; shutil.rmtree(d, ignore_errors=True); os.makedirs(d)
    cfg = json.load(open("rnd/config.json"))
    if config: config(cfg)
    json.dump(cfg, open(f"{d}/config.json", "w"))
    if tok: shutil.copy("rnd/tokenizer.json", d)
    if header is None:
        blob = st if body is None else body
    else:
        h = json.dumps(header).encode()
        h += b" " * ((8 - len(h) % 8) % 8)
        blob = struct.pack("<Q", len(h)) + h + st[8 + hlen:]
        if body is not None: blob = body(blob)
    open(f"{d}/model.safetensors", "wb").write(blob)
hf("hf-trunc-half", body=st[: len(st) // 2])
hf("hf-trunc-hdr", body=st[:100])
hf("hf-trunc-1", body=st[:-1])
first = next(k for k in hdr if k != "__metadata__" and "embed" in k)
h = json.loads(json.dumps(hdr)); h[first]["dtype"] = "I16"; hf("hf-i16-embed", header=h)
h = json.loads(json.dumps(hdr)); k2 = next(k for k in hdr if "q_proj" in k); h[k2]["dtype"] = "F8_E4M3"; h[k2]["shape"] = [h[k2]["shape"][0], h[k2]["shape"][1]*2]; hf("hf-f8-q", header=h)
h = json.loads(json.dumps(hdr)); h[k2]["shape"] = [h[k2]["shape"][0]//2, h[k2]["shape"][1]*2]; hf("hf-shape-q", header=h)
h = json.loads(json.dumps(hdr)); del h[k2]; hf("hf-missing-q", header=h)
hf("hf-cfg-heads", config=lambda c: c.update(num_attention_heads=7))
hf("hf-cfg-layers-neg", config=lambda c: c.update(num_hidden_layers=-1))
hf("hf-cfg-layers-big", config=lambda c: c.update(num_hidden_layers=31))
hf("hf-cfg-ctx-str", config=lambda c: c.update(max_position_embeddings="8192"))
hf("hf-cfg-theta-nan", config=lambda c: c.update(rope_theta=float("nan")))
hf("hf-cfg-eps-0", config=lambda c: c.update(rms_norm_eps=0))
hf("hf-cfg-vocab-big", config=lambda c: c.update(vocab_size=10**12))
hf("hf-no-tok", tok=False)
print("keys", first, k2)
