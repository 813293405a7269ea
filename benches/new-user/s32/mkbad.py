import re, os, sys
base = open(sys.argv[1]).read()
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
def sub(pat, rep, count=1):
    t, n = re.subn(pat, rep, base, count=count, flags=re.M)
    assert n, pat
    return t
V = {
 "type-sink-string": sub(r"^sink_tokens = 64", 'sink_tokens = "64"'),
 "type-layers-float": sub(r"^layers = 30", "layers = 30.5"),
 "type-mode-int": sub(r'^mode = "moa"', "mode = 3"),
 "type-mode-bad": sub(r'^mode = "moa"', 'mode = "sparse"'),
 "type-name-int": sub(r'^name = ".*"', "name = 5"),
 "type-alpha-string": sub(r"^alpha = \[0, 0, 0, 0, 0, 0, 0, 0, 0\]", 'alpha = ["0", 0, 0, 0, 0, 0, 0, 0, 0]'),
 "type-beta-table": sub(r"^beta = \[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25\]", "beta = {a = 1}"),
 "type-layers-not-array": sub(r"^\[\[layers\]\]", "[layers]"),
 "neg-sink": sub(r"^sink_tokens = 64", "sink_tokens = -1"),
 "span0-min": sub(r"^min_span_tokens = 128", "min_span_tokens = 0"),
 "span0-block": sub(r"^block_tokens = 64", "block_tokens = 0"),
 "density2-meta": sub(r"^target_densities = \[0.5\]", "target_densities = [2]"),
 "density2-beta": sub(r"^beta = \[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25\]", "beta = [2, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]"),
 "beta-neg": sub(r"^beta = \[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25\]", "beta = [-0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]"),
 "beta-nan": sub(r"^beta = \[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25\]", "beta = [nan, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]"),
 "alpha-huge": sub(r"^alpha = \[0, 0, 0, 0, 0, 0, 0, 0, 0\]", "alpha = [1e12, 0, 0, 0, 0, 0, 0, 0, 0]"),
 "extra-layer": base + "\n[[layers]]\nalpha = [0, 0, 0, 0, 0, 0, 0, 0, 0]\nbeta = [1, 1, 1, 1, 1, 1, 1, 1, 1]\n",
 "layers-31-shape": sub(r"^layers = 30", "layers = 31"),
 "qheads-mismatch-model": sub(r"^q_heads = 9\nkv_heads = 3", "q_heads = 6\nkv_heads = 3").replace("alpha = [0, 0, 0, 0, 0, 0, 0, 0, 0]","alpha = [0, 0, 0, 0, 0, 0]"),
 "kvheads-mismatch-model": sub(r"^kv_heads = 3", "kv_heads = 1"),
 "headdim-mismatch-model": sub(r"^head_dim = 64", "head_dim = 128"),
 "context-past-model": sub(r"^max_context_tokens = 8192", "max_context_tokens = 16384"),
 "missing-head_dim": sub(r"^head_dim = 64\n", ""),
 "missing-span": sub(r"^\[span\]\n(.*\n){5}", ""),
 "missing-format": sub(r"^format_version = 1\n", ""),
 "missing-beta": sub(r"^beta = \[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25\]\n", ""),
 "missing-model": sub(r"^\[model\]\n(.*\n){6}", ""),
 "unknown-span-field": sub(r"^sink_tokens = 64", "sink_tokens = 64\nsinks = 4"),
 "unknown-top-table": base + "\n[extra]\nfoo = 1\n",
 "unknown-layer-field": sub(r"^beta = \[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25\]", "beta = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]\ngamma = 1"),
 "big-2p64-sink": sub(r"^sink_tokens = 64", "sink_tokens = 18446744073709551616"),
 "big-2p64-layers": sub(r"^layers = 30", "layers = 18446744073709551616"),
 "big-2p64-float-ctx": sub(r"^max_context_tokens = 8192", "max_context_tokens = 1.8446744073709552e19"),
 "big-2p63-newtok": sub(r"^max_new_tokens = 1024", "max_new_tokens = 9223372036854775807"),
 "big-2p32-ctx": sub(r"^max_context_tokens = 8192", "max_context_tokens = 4294967296"),
 "big-alpha-2p64": sub(r"^alpha = \[0, 0, 0, 0, 0, 0, 0, 0, 0\]", "alpha = [18446744073709551616, 0, 0, 0, 0, 0, 0, 0, 0]"),
 "dup-key": sub(r"^sink_tokens = 64", "sink_tokens = 64\nsink_tokens = 32"),
 "format-2": sub(r"^format_version = 1", "format_version = 2"),
 "binary-garbage": None,
 "utf16": None,
 "empty": "",
}
for k, v in V.items():
    p = os.path.join(out, k + ".toml")
    if k == "binary-garbage":
        open(p, "wb").write(os.urandom(2000))
    elif k == "utf16":
        open(p, "wb").write(base.encode("utf-16"))
    else:
        open(p, "w").write(v)
os.makedirs(os.path.join(out, "a-directory.toml"), exist_ok=True)
p = os.path.join(out, "no-read.toml"); open(p, "w").write(base); os.chmod(p, 0)
print(len(V) + 2, "cases")
