#!/usr/bin/env bash
# Every plan-edges.py variant through moa-compile --target wgsl: exit code and the last
# message line. Run from the repository root.
set -u
MC=${MC:-moa-compile}
W=${W:-/tmp/s37-user/w/plan-edges}; rm -rf "$W"; python3 "$(dirname "$0")/plan-edges.py" "$W"
for f in "$W"/*.toml; do
  out=$("$MC" "$f" -o "$W/out-$(basename "$f" .toml)" --target wgsl -q 2>&1); rc=$?
  printf '%-24s exit %s  %s\n' "$(basename "$f" .toml)" "$rc" "$(echo "$out" | grep -v '^moa-compile failed' | tr '\n' ' ' | cut -c1-400)"
done
