# Wide GQA groups at large head_dim for the CUDA target (battery-wide.sh): one KV head
# under 16, 32 and 64 query heads at head_dim 128 and 256, and 8 at 256. Writes wp/.
import os
os.makedirs("wp", exist_ok=True)
for q, hd in [(8, 256), (16, 256), (32, 256), (64, 256), (16, 128), (64, 128)]:
    a = [(h % 5) * 16 for h in range(q)]; b = [[0.0, 0.25, 0.5, 1.0][h % 4] for h in range(q)]
    open(f"wp/g{q}-hd{hd}.toml", "w").write(
        f'format_version = 1\n[model]\nname = "g{q}-hd{hd}"\nlayers = 1\nq_heads = {q}\nkv_heads = 1\nhead_dim = {hd}\n'
        f'max_context_tokens = 4096\n[span]\nsink_tokens = 16\nmin_span_tokens = 32\nblock_tokens = 16\nmax_new_tokens = 32\n'
        f'[[layers]]\nalpha = {a}\nbeta = {b}\n')
