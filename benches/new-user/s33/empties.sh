#!/bin/bash
# An empty calibration file or profile to the commands that take one.
: > empty.jsonl
for c in "validate --calib empty.jsonl --plan best-50.toml" "profile --calib empty.jsonl --lengths 256 -o pe" "diagnose --calib empty.jsonl --plan best-50.toml" "calib --out calib.jsonl --lengths 256 --samples 0" "optimize --profile empty.jsonl --density 0.5 -o oe"; do
  s=$(date +%s.%N); moa $c > o.txt 2> e.txt; rc=$?; printf '### moa %s\nexit %d, %.1f s\n' "$c" $rc $(echo "$(date +%s.%N) - $s" | bc); tail -3 e.txt | cut -c1-250
done
