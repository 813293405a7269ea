#!/bin/bash
# Round 18's leftovers on SmolLM2 (the fetched model): seconds to the error with the
# binaries of main at cb1b366 (OLD) and of this branch (NEW); PLAN = smollm2-135m-moa-50.toml.
: > empty.txt; : > empty.jsonl
for b in "$OLD" "$NEW"; do
  s=$(date +%s.%N); $b/moa eval --plan "$PLAN" --lengths 256 --depths 1 --ppl-text empty.txt 2>&1 | tail -1 | cut -c1-200; printf '%s: %.1f s\n' $b $(echo "$(date +%s.%N) - $s" | bc)
  s=$(date +%s.%N); $b/moa diagnose --calib empty.jsonl --plan "$PLAN" 2>&1 | tail -1 | cut -c1-120; printf '%s: %.1f s\n' $b $(echo "$(date +%s.%N) - $s" | bc)
done
