#!/usr/bin/env bash
# Round 22: outputs after Ctrl-C (SIGINT) at several points and on a full disk (a 1 MiB
# tmpfs is not available without root here, so /dev/full stands in for a file write, and a
# folder made read-only for a rename). Lists what each run left beside its output.
# usage: MOA=path/to/moa MOA_COMPILE=path/to/moa-compile interrupt.sh PLAN MODEL WORKDIR
set -u
# Job control on: a background job of a script otherwise ignores SIGINT (bash).
set -m
MOA=${MOA:-moa}; MC=${MOA_COMPILE:-moa-compile}
PLAN=$1; M=$2; W=$3
rm -rf "$W"; mkdir -p "$W"
for t in 0.05 0.2 0.5 1 2; do
    out="$W/kernels $t"
    "$MC" "$PLAN" -o "$out" --target wgsl & pid=$!
    sleep "$t"; kill -INT $pid 2>/dev/null; wait $pid; code=$?
    echo "moa-compile SIGINT after ${t}s: exit $code; left: $(ls -A "$out" 2>/dev/null | tr '\n' ' ')"
    "$MC" "$PLAN" -o "$out" --target wgsl --check > /dev/null 2>&1; echo "  --check then: exit $?"
done
for t in 0.05 0.3 1; do
    out="$W/random $t"
    "$MOA" model random --like smollm2-135m -o "$out" & pid=$!
    sleep "$t"; kill -INT $pid 2>/dev/null; wait $pid; code=$?
    echo "model random SIGINT after ${t}s: exit $code; left: $(ls -A "$W" | grep -F "random $t" | tr '\n' ' ') / inside: $(ls -A "$out" 2>/dev/null | tr '\n' ' ')"
done
# The next run over a stopped one's folder removes the dead `.partial-<pid>` (a run that
# finished before the signal left a whole folder, which a second run refuses to write over).
"$MOA" model random --like smollm2-135m -o "$W/random 0.3" > "$W/random.err" 2>&1
echo "model random again over 'random 0.3': exit $? ($(grep Cause "$W/random.err" | head -1)); left: $(ls -A "$W" | grep -F "random 0.3" | tr '\n' ' ')"
for t in 0.5 2; do
    out="$W/calib $t.jsonl"
    "$MOA" calib --model "$M" --out "$out" --lengths 300 --samples 3 --source generated --device cpu > "$W/calib.err" 2>&1 & pid=$!
    sleep "$t"; kill -INT $pid 2>/dev/null; wait $pid; code=$?
    echo "calib SIGINT after ${t}s: exit $code ($(grep -E 'Cause|rror' "$W/calib.err" | head -2 | tr '\n' ' ')); left: $(ls -A "$W" | grep -F "calib $t" | tr '\n' ' ')"
done
"$MOA" plan import tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json --layers 32 --heads 32 --kv-heads 32 --head-dim 128 --max-context 16384 -o /dev/full > "$W/e.out" 2>&1
echo "plan import -o /dev/full: exit $?: $(grep Cause "$W/e.out")"
"$MOA" plan export "$PLAN" -o /dev/full > "$W/e.out" 2>&1
echo "plan export -o /dev/full: exit $?: $(grep Cause "$W/e.out")"
# (Read-only folders are not tried: this machine's shell is root, which writes anyway.)
