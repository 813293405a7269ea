#!/bin/bash
# docs/CALIBRATION.md's command lines in a small form (SmolLM2, CPU reference; eval on
# lavapipe), each as a user types it; PLAN = plans/smollm2-135m-moa-50.toml of the clone.
PLAN=${PLAN:?}
t() { s=$(date +%s.%N); "$@" > last.out 2> last.err; rc=$?; printf '### %s\nexit %d, %.1f s\n' "$*" $rc $(echo "$(date +%s.%N) - $s" | bc); tail -4 last.err | cut -c1-250 | sed 's/^/    /'; tail -3 last.out | cut -c1-250 | sed 's/^/    | /'; }
t moa calib --out calib.jsonl --lengths 256 --samples 2 --seed 0 --source generated
t moa calib --out heldout.jsonl --lengths 512 --samples 1 --seed 1 --source generated
t moa profile --calib calib.jsonl --lengths 256 -o profiles/
t moa optimize --profile profiles/influence_256.safetensors --density 0.5 --gqa-native --extra-length 512 -o opt-50/
t moa validate --calib heldout.jsonl --plan opt-50/plan_0.toml --best best-50.toml
t moa diagnose --calib calib.jsonl --plan "$PLAN" --top 3
t moa eval --plan "$PLAN" --lengths 256 --depths 2 --ppl-rows 1 --ppl-length 256 --ppl-scored 64 --json eval.json --markdown eval.md
