#!/bin/bash
# Journey A: every MOA_* variable of docs/DESIGN.md §7.3 set to bad values, one at a time,
# under `moa generate` on lavapipe (the default model, one new token).
# Usage: env-bad.sh BIN_DIR  (the folder holding moa)
BIN=${1:?bin dir}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-s56}
vars=$(sed -n '/^### 7.3 Settings/,/^### 7.4/p' docs/DESIGN.md | grep -o '^| `MOA_[A-Z0-9_]*`\(, `MOA_[A-Z0-9_]*`\)\?' | grep -o 'MOA_[A-Z0-9_]*')
for v in $vars; do
  for val in "${VALUES:-bogus}"; do
    start=$(date +%s.%N)
    out=$(env "$v=$val" timeout 120 "$BIN/moa" generate --prompt hi --max-new-tokens 1 2>&1)
    rc=$?
    t=$(echo "$(date +%s.%N) - $start" | bc)
    printf '%s=%q rc=%s %.1fs: %s\n' "$v" "$val" "$rc" "$t" "$(echo "$out" | grep -v '^moa: building\|^prefill\|^KV cache' | tail -2 | tr '\n' ' ' | cut -c1-300)"
  done
done
