#!/usr/bin/env bash
# Round 24: `moa pipeline` killed (SIGINT, then SIGKILL) at several points on a
# SmolLM2-shaped random model; what the work folder holds after each, and whether the
# next run resumes and ends with the same plan as an uninterrupted run.
# usage: MOA=path/to/moa interrupt.sh MODEL SCRATCH
set -u
set -m
MOA=${MOA:-moa}
M=$1; S=$2
mkdir -p "$S"
args() { echo pipeline --model "$M" --workdir "$1" --plans-dir "$1-plans" --profile-lengths 256 --samples 2 --validate-length 320 --validate-samples 1 --densities 0.5 --source generated --time-limit 5; }
W0=$S/clean; rm -rf "$W0" "$W0-plans"
start=$(date +%s.%N)
"$MOA" $(args "$W0") > "$S/clean.out" 2>&1; echo "uninterrupted: exit $? in $(echo "$(date +%s.%N) - $start" | bc) s"
grep -E "^== " "$S/clean.out" | head
for st in INT:3 INT:10 INT:30 KILL:6 KILL:30; do
  sig=${st%:*}; t=${st#*:}
  {
  W=$S/w-$sig-$t; rm -rf "$W" "$W-plans"
  "$MOA" $(args "$W") > "$S/k.out" 2>&1 &
  pid=$!; sleep "$t"; ign=$(grep SigIgn /proc/$pid/status 2>/dev/null | cut -f2); kill -$sig $pid 2>/dev/null; wait $pid; code=$?
  echo "SIG$sig at ${t}s (SigIgn $ign): exit $code; stage: $(grep -E '^== ' "$S/k.out" | tail -1); left: $(cd "$W" 2>/dev/null && find . -type f | sort | tr '\n' ' ')"
  "$MOA" $(args "$W") > "$S/r.out" 2>&1; code=$?
  echo "  rerun: exit $code; $(grep -iE 'resum|skip|reus|removed|partial|left' "$S/r.out" | head -4 | cut -c1-200 | tr '\n' '|')"
  if cmp -s <(grep -v '^provenance\|^notes' "$W-plans/"*.toml 2>&1) <(grep -v '^provenance\|^notes' "$W0-plans/"*.toml); then echo "  plan: same rules as uninterrupted"; else echo "  plan: DIFFERS"; diff <(grep -v '^provenance\|^notes' "$W-plans/"*.toml 2>&1) <(grep -v '^provenance\|^notes' "$W0-plans/"*.toml) | head -5; fi
  if ! diff -q "$W/calib.jsonl" "$W0/calib.jsonl" >/dev/null; then echo "  calib.jsonl differs"; fi
  }
done
