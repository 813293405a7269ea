# Plans at the edges of the IR (battery-edges.sh): spans of 1 token, a sink longer than
# the span, spans past the context, a layer where every head is dense, one KV head,
# head_dim 80 / 96 / 256 (and 4, 12, 20, 260). Writes ep/<name>.toml.
import os
os.makedirs("ep", exist_ok=True)
def plan(name, layers=2, q=4, kv=2, hd=64, ctx=1024, sink=16, mn=32, block=16, mode="moa",
         alpha=None, beta=None, max_new=32, rows=None):
    s = f'format_version = 1\n[model]\nname = "{name}"\nlayers = {layers}\nq_heads = {q}\nkv_heads = {kv}\nhead_dim = {hd}\nmax_context_tokens = {ctx}\n'
    s += f'[span]\nsink_tokens = {sink}\nmin_span_tokens = {mn}\nblock_tokens = {block}\nmode = "{mode}"\nmax_new_tokens = {max_new}\n'
    for l in range(layers):
        if rows is not None:
            a, b = rows[l]
        else:
            a = alpha if alpha is not None else [64] * q
            b = beta if beta is not None else [0.25] * q
        s += f"[[layers]]\nalpha = {a}\nbeta = {b}\n"
    open(f"ep/{name}.toml", "w").write(s)
# a head of span 1 (the smallest: min_span_tokens = 1, alpha <= 0, beta 0), others wide
plan("span1", mn=1, block=1, sink=0, alpha=[0, -5, 64, 0], beta=[0.0, 0.0, 0.25, 1.0])
plan("span1-sink", mn=1, block=1, sink=4, alpha=[0, 1, 2, 0], beta=[0.0, 0.0, 0.0, 1.0])
# sink longer than every span (the head sees only its first S tokens)
plan("sink-gt-span", sink=64, mn=8, block=8, alpha=[8, 16, 24, 0], beta=[0.0, 0.0, 0.0, 0.0])
# spans past the context (alpha = 2 x context), moa and upstream mode
plan("span-past-ctx", alpha=[2048, 0, 4096, 0], beta=[0.0, 1.0, 0.0, 0.5])
plan("span-past-ctx-up", mode="upstream", alpha=[2048, 0, 4096, 0], beta=[0.0, 1.0, 0.0, 0.5])
# a layer with every head dense, another with every head at the minimum
plan("dense-layer", rows=[([0] * 4, [1.0] * 4), ([0] * 4, [0.0] * 4)])
plan("all-dense", alpha=[0] * 4, beta=[1.0] * 4)
plan("all-min", alpha=[-100] * 4, beta=[0.0] * 4)
# one KV head
plan("mqa8", q=8, kv=1, alpha=[0, 32, 64, 128, 0, 0, 16, 1024], beta=[0.5, 0.0, 0.0, 0.0, 1.0, 0.25, 0.0, 0.0])
plan("mqa1", q=1, kv=1)
for hd in [4, 12, 20, 80, 96, 256, 260, 6]:
    plan(f"hd{hd}", hd=hd, alpha=[0, 32, 64, 0], beta=[0.5, 0.0, 0.25, 1.0])
plan("hd256-mqa8", hd=256, q=8, kv=1, alpha=[0, 32, 64, 128, 0, 0, 16, 1024], beta=[0.5, 0.0, 0.0, 0.0, 1.0, 0.25, 0.0, 0.0])
plan("hd80-mqa8", hd=80, q=8, kv=1, alpha=[0, 32, 64, 128, 0, 0, 16, 1024], beta=[0.5, 0.0, 0.0, 0.0, 1.0, 0.25, 0.0, 0.0])
plan("hd96-gqa3", hd=96, q=6, kv=2, alpha=[0, 32, 64, 128, 0, 0], beta=[0.5, 0.0, 0.0, 0.0, 1.0, 0.25])
# context of one block, max_new = context - 1
plan("ctx16", ctx=16, sink=4, mn=4, block=4, max_new=15)
