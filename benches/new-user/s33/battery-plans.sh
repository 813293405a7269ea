#!/bin/bash
# Every plan in p/ through moa-compile (wgsl), plan show, plan export, validate's plan
# check (--model: the fetched SmolLM2; a missing calib is given so the plan is read first).
M=${MOA:-moa}; C=${MOA_COMPILE:-moa-compile}
for p in p/*.toml; do
  for cmd in "$C $p -o o-plan --target wgsl -q" "$M plan show $p --prompt-len 2048" "$M plan export $p -o /dev/null"; do
    s=$(date +%s.%N); timeout 120 $cmd > out.txt 2> err.txt; rc=$?; e=$(echo "$(date +%s.%N) - $s" | bc)
    printf '### %s\nexit %d, %.1f s\n' "${cmd/$M/moa}" $rc $e
    grep -q panicked err.txt && echo "!!! PANIC"
    head -c 500 err.txt | sed 's/^/    /'; echo
  done
done
