#!/bin/bash
# Journey B's models and plans (compile-edges.sh's WORK): random models of odd attention
# shapes and a 2-layer plan of each (every head alpha 64, beta 0.5), and a 600-byte prompt.
# Usage: compile-edges-setup.sh BIN_DIR WORK
BIN=${1:?bin}; W=${2:?work}
mkdir -p "$W/models"
mk() { # name layers q kv head_dim context
python3 - "$W" "$@" <<'PY'
import sys
w, name = sys.argv[1], sys.argv[2]
L, q, kv, hd, ctx = map(int, sys.argv[3:])
s = f'format_version = 1\n[model]\nname="{name}"\nlayers={L}\nq_heads={q}\nkv_heads={kv}\nhead_dim={hd}\nmax_context_tokens={ctx}\n'
s += '[span]\nsink_tokens=16\nmin_span_tokens=32\nblock_tokens=16\nmode="moa"\nmax_new_tokens=32\n'
for _ in range(L):
    s += '[[layers]]\nalpha=[' + ','.join(['64'] * q) + ']\nbeta=[' + ','.join(['0.5'] * q) + ']\n'
open(f'{w}/{name}.toml', 'w').write(s)
PY
}
mk hd256 2 8 2 256 4096; mk hd4 2 2 1 4 1024; mk g64 2 64 1 64 1024; mk hd252 2 2 1 252 1024
R="$BIN/moa model random --like smollm2-135m --layers 2 --vocab 300"
$R --hidden 512 --heads 8 --kv-heads 2 --head-dim 256 --intermediate 256 --context 4096 -o "$W/models/hd256"
$R --hidden 64 --heads 2 --kv-heads 1 --head-dim 4 --intermediate 64 --context 1024 -o "$W/models/hd4"
$R --hidden 512 --heads 64 --kv-heads 1 --head-dim 64 --intermediate 256 --context 1024 -o "$W/models/g64"
$R --hidden 504 --heads 2 --kv-heads 1 --head-dim 252 --intermediate 256 --context 1024 -o "$W/models/hd252"
python3 -c "print(('The quick brown fox jumps over the lazy dog. '*14)[:600])" > "$W/prompt600.txt"
