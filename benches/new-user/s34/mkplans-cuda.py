# Odd but valid-looking plans for the CUDA target's compile-only path (battery-cuda.sh).
import os
os.makedirs("cp", exist_ok=True)
def plan(name, layers=2, q=4, kv=2, hd=64, ctx=1024, sink=16, mn=32, block=16, mode="moa",
         alpha=None, beta=None, max_new=32):
    s = f'format_version = 1\n[model]\nname = "{name}"\nlayers = {layers}\nq_heads = {q}\nkv_heads = {kv}\nhead_dim = {hd}\nmax_context_tokens = {ctx}\n'
    s += f'[span]\nsink_tokens = {sink}\nmin_span_tokens = {mn}\nblock_tokens = {block}\nmode = "{mode}"\nmax_new_tokens = {max_new}\n'
    for l in range(layers):
        a = alpha if alpha is not None else [64] * q
        b = beta if beta is not None else [0.25] * q
        s += f"[[layers]]\nalpha = {a}\nbeta = {b}\n"
    open(f"cp/{name}.toml", "w").write(s)
for hd in [8, 16, 32, 48, 80, 96, 128, 192, 256, 512]:
    plan(f"hd{hd}", hd=hd)
plan("mha", q=4, kv=4)
plan("one-head", q=1, kv=1)
plan("gqa32-1", q=32, kv=1)
plan("q7kv7", q=7, kv=7)
plan("ctx64", ctx=64, max_new=8, mn=16, sink=4)
plan("ctx1m", ctx=1 << 20)
plan("block1", block=1)
plan("block512", block=512, mn=512)
plan("sink0", sink=0)
plan("upstream", mode="upstream")
plan("dense", alpha=[0] * 4, beta=[1.0] * 4)
plan("neg-alpha", alpha=[-32] * 4, beta=[0.5] * 4)
plan("zero-span", alpha=[0] * 4, beta=[0.0] * 4)
plan("layers64", layers=64)
