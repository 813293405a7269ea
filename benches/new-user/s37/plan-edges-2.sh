#!/usr/bin/env bash
# More plan TOML edges ([meta] keys, table order, inline tables, float/int forms): each
# variant of plans/fixture-gqa.toml through moa-compile --target wgsl; the message of
# each. Run from the
# repository root.
set -u
MC=${MC:-moa-compile}
W=${W:-/tmp/s37-user/w/meta}; rm -rf "$W"; mkdir -p "$W"; B=plans/fixture-gqa.toml
python3 - "$W" "$B" <<'PY'
import sys,os
W,B=sys.argv[1],sys.argv[2]; base=open(B).read()
one='{alpha=[0,0,0,0,0,0,0,0], beta=[1.0,1.0,1.0,1.0,1.0,1.0,1.0,1.0]}'
v={
 'meta-unknown': base+'\n[meta]\nauthor = "me"\n',
 'meta-notes-ctrl': base+'\n[meta]\nnotes = "a\\u001b[2Jb\\nc"\n',
 'meta-density-nan': base+'\n[meta]\ntarget_densities = [nan]\n',
 'meta-density-2': base+'\n[meta]\ntarget_densities = [2.0]\n',
 'span-after-layers': base.replace('[span]\n',''),
 'layers-first': base[:base.index('[model]')] + base[base.index('[[layers]]'):] + '\n' + base[base.index('[model]'):base.index('[[layers]]')],
 'inline-tables': base,
 'layers-inline-array': base[:base.index('[[layers]]')].replace('format_version = 1','format_version = 1\nlayers = ['+','.join([one]*3)+']'),
 'alpha-float': base.replace('alpha = [32, 32, 32, 32','alpha = [32.5, 32, 32, 32'),
 'alpha-float-whole': base.replace('alpha = [32, 32, 32, 32','alpha = [32.0, 32, 32, 32'),
 'beta-int': base.replace('beta = [0.0, 0.0, 0.0, 0.0, 0.25','beta = [0, 0, 0, 0, 0.25'),
 'beta-1e-300': base.replace('beta = [0.0, 0.0, 0.0, 0.0, 0.25','beta = [1e-300, 0.0, 0.0, 0.0, 0.25'),
}
for k,t in v.items(): open(os.path.join(W,k+'.toml'),'w').write(t)
PY
for f in "$W"/*.toml; do
  out=$("$MC" "$f" -o "$W/out-$(basename "$f" .toml)" --target wgsl -q 2>&1); rc=$?
  printf '%-22s exit %s %s\n' "$(basename "$f" .toml)" "$rc" "$(echo "$out" | grep -v '^moa-compile failed' | tr '\n' ' ' | cut -c1-330)"
done
