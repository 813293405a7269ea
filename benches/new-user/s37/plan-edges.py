#!/usr/bin/env python3
"""Plan TOML edge cases for moa-compile (round 23): each variant of plans/fixture-gqa.toml
written to W/<name>.toml; plan-edges.sh compiles each and logs exit and message."""
import os, sys
W = sys.argv[1]; os.makedirs(W, exist_ok=True)
base = open('plans/fixture-gqa.toml', encoding='utf-8').read()
L = base.index('[[layers]]')
head, layers = base[:L], base[L:]
one = '[[layers]]\nalpha = [0, 0, 0, 0, 0, 0, 0, 0]\nbeta = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]\n\n'
v = {
 'ok': base,
 'layer-missing': head + layers[:layers.rindex('[[layers]]')],
 'layer-repeated': base + '\n' + one,
 'heads-short': base.replace('alpha = [32, 32, 32, 32, 0, 0, 0, 0]', 'alpha = [32, 32, 32, 32, 0, 0, 0]'),
 'heads-long': base.replace('alpha = [32, 32, 32, 32, 0, 0, 0, 0]', 'alpha = [32, 32, 32, 32, 0, 0, 0, 0, 0]'),
 'kv-not-divisor': base.replace('kv_heads = 2', 'kv_heads = 3'),
 'kv-zero': base.replace('kv_heads = 2', 'kv_heads = 0'),
 'sink-over-context': base.replace('sink_tokens = 16', 'sink_tokens = 2048'),
 'sink-over-min-span': base.replace('sink_tokens = 16', 'sink_tokens = 64'),
 'min-span-0': base.replace('min_span_tokens = 32', 'min_span_tokens = 0'),
 'block-0': base.replace('block_tokens = 16', 'block_tokens = 0'),
 'block-3': base.replace('block_tokens = 16', 'block_tokens = 3'),
 'alpha-huge': base.replace('alpha = [32, 32, 32, 32', 'alpha = [1e300, 32, 32, 32'),
 'alpha-i64-max': base.replace('alpha = [32, 32, 32, 32', 'alpha = [9223372036854775807, 32, 32, 32'),
 'alpha-past-i64': base.replace('alpha = [32, 32, 32, 32', 'alpha = [9223372036854775808, 32, 32, 32'),
 'beta-nan': base.replace('beta = [0.0, 0.0, 0.0, 0.0, 0.25', 'beta = [nan, 0.0, 0.0, 0.0, 0.25'),
 'beta-inf': base.replace('beta = [0.0, 0.0, 0.0, 0.0, 0.25', 'beta = [inf, 0.0, 0.0, 0.0, 0.25'),
 'beta-negative': base.replace('beta = [0.0, 0.0, 0.0, 0.0, 0.25', 'beta = [-0.5, 0.0, 0.0, 0.0, 0.25'),
 'context-huge': base.replace('max_context_tokens = 1024', 'max_context_tokens = 4294967296'),
 'context-2pow30': base.replace('max_context_tokens = 1024', 'max_context_tokens = 1073741824'),
 'layers-huge': base.replace('layers = 3', 'layers = 4000000000'),
 'head-dim-0': base.replace('head_dim = 64', 'head_dim = 0'),
 'max-new-huge': base.replace('max_new_tokens = 32', 'max_new_tokens = 18446744073709551615'),
 'unknown-top-key': base.replace('format_version = 1', 'format_version = 1\ncolour = "blue"'),
 'unknown-span-key': base.replace('mode = "moa"', 'mode = "moa"\nwindow = 4'),
 'unknown-layer-key': base.replace('alpha = [32, 32, 32, 32', 'gamma = 1\nalpha = [32, 32, 32, 32'),
 'mode-bad': base.replace('mode = "moa"', 'mode = "MoA"'),
 'format-2': base.replace('format_version = 1', 'format_version = 2'),
 'format-missing': base.replace('format_version = 1\n', ''),
 'comments-everywhere': base.replace('\n', '  # c\n').replace('# Small', '# Small'),
 'crlf': base.replace('\n', '\r\n'),
 'empty': '',
 'only-comment': '# nothing\n',
 'whitespace': ' \n\t\n',
 'layers-empty-array': head + 'layers = []\n',
 'name-missing': base.replace('name = "fixture-gqa"\n', ''),
 'dup-key': base.replace('layers = 3', 'layers = 3\nlayers = 3'),
 'table-twice': base + '\n[model]\nname = "x"\n',
 'int-as-string': base.replace('layers = 3', 'layers = "3"'),
 'float-layers': base.replace('layers = 3', 'layers = 3.0'),
 'tabs-and-unicode-name': base.replace('name = "fixture-gqa"', 'name = "fïxture\tgqa ✓"'),
}
for k, t in v.items():
    open(os.path.join(W, k + '.toml'), 'w', encoding='utf-8', newline='').write(t)
b = base.encode()
open(os.path.join(W, 'bom.toml'), 'wb').write(b'\xef\xbb\xbf' + b)
open(os.path.join(W, 'latin1-comment.toml'), 'wb').write(b.replace(b'# Small', b'# Sm\xe4ll'))
open(os.path.join(W, 'utf16.toml'), 'wb').write(b'\xff\xfe' + base.encode('utf-16-le'))
open(os.path.join(W, 'nul-byte.toml'), 'wb').write(b.replace(b'# Small', b'# Sm\x00all'))
open(os.path.join(W, 'truncated.toml'), 'wb').write(b[:len(b)//2])
