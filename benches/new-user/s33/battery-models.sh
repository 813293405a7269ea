#!/bin/bash
# Every hostile model (m/*) through model info, generate (wgpu, lavapipe), plan import
# --model and plan show --max-batch --model; exit code, seconds and the error's last lines.
M=${MOA:-moa}; UP=upstream.json
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
for m in m/*; do
  for cmd in "model info $m" "generate --dense --model $m --prompt hi --max-new-tokens 2" "plan import $UP --model $m -o /dev/null" "plan show plan.toml --max-batch --model $m --prompt-len 1024 --memory 10"; do
    s=$(date +%s.%N); timeout 300 $M $cmd > out.txt 2> err.txt; rc=$?; e=$(echo "$(date +%s.%N) - $s" | bc)
    printf '### %s: moa %s\nexit %d, %.1f s\n' "$m" "$cmd" $rc $e
    grep -q panicked err.txt && echo "!!! PANIC"
    tail -c 600 err.txt | sed 's/^/    /'; echo
  done
done
