# The 1024-layer plan of round 15 (session 26): the format's limit on layers, 64 query /
# 8 KV heads of 128, random rules (seed 1). Usage: python3 mkbig.py > big.toml
# Then: /usr/bin/time moa-compile big.toml -o bigout  (228.8 s, 0.84 GB peak, 5121 kernels)
import random
r = random.Random(1)
L, q, kv = 1024, 64, 8
s = f'''format_version = 1
[model]
name = "big"
layers = {L}
q_heads = {q}
kv_heads = {kv}
head_dim = 128
max_context_tokens = 131072
[span]
sink_tokens = 64
min_span_tokens = 128
block_tokens = 64
mode = "moa"
max_new_tokens = 1024
'''
for l in range(L):
    a = [r.choice([0, 64, 128, 256, 512, 1024]) for _ in range(q)]
    b = [r.randrange(0, 4097) / 4096 for _ in range(q)]
    s += f"[[layers]]\nalpha = {a}\nbeta = {b}\n"
print(s, end="")
