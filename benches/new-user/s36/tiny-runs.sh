#!/usr/bin/env bash
# Round 22: moa eval and moa pipeline on tiny inputs (one calibration sample, a context
# shorter than the plans' sink), on a tiny folder (mkhf.py f32; 512-token context).
# usage: MOA=path/to/moa tiny-runs.sh MODEL WORKDIR
set -u
MOA=${MOA:-moa}
M=$1; W=$2
r() { echo "[$*]"; timeout 300 "$MOA" "$@" > run.out 2>&1; echo "exit $?: $(grep -vE '^\s*$' run.out | tail -6 | tr '\n' '|')"; }
rm -rf "$W"; mkdir -p "$W"
r eval --backend cpu --model "$M" --lengths 16 --depths 1 --ppl-rows 1 --ppl-length 16 --ppl-scored 4 --quiet
r eval --backend cpu --model "$M" --lengths 8 --depths 1 --ppl-rows 0 --quiet
r eval --backend cpu --model "$M" --lengths 600 --depths 1 --ppl-rows 0 --quiet
r eval --backend cpu --model "$M" --lengths 138 --depths 1 --ppl-rows 1 --ppl-length 16 --ppl-scored 4 --quiet --json "$W/e.json"
r calib --model "$M" --out "$W/one.jsonl" --lengths 64 --samples 1 --source generated --device cpu
# valid: the least length the first answer names
r eval --backend cpu --model "$M" --lengths 240 --depths 1 --ppl-rows 1 --ppl-length 64 --ppl-scored 8 --quiet --json "$W/e.json"
r calib --model "$M" --out "$W/c16.jsonl" --lengths 16 --samples 1 --source generated --device cpu
r calib --model "$M" --out "$W/c0.jsonl" --lengths 64 --samples 0 --source generated --device cpu
r calib --model "$M" --out "$W/one.jsonl" --lengths 80 --samples 1 --source generated --device cpu
r calib --model "$M" --out "$W/one.jsonl" --lengths 246 --samples 1 --source generated --device cpu
r pipeline --model "$M" --workdir "$W/p1" --profile-lengths 64 --samples 1 --validate-length 64 --validate-samples 1 --densities 0.5 --source generated --device cpu
ls -R "$W/p1" 2>/dev/null | head -30
r pipeline --model "$M" --workdir "$W/p2" --profile-lengths 32 --samples 1 --validate-length 32 --validate-samples 1 --densities 0.5 --source generated --device cpu
r pipeline --model "$M" --workdir "$W/p3" --profile-lengths 512 --samples 1 --validate-length 512 --validate-samples 1 --densities 0.5 --source generated --device cpu
# one sample at 96 tokens, validation at 128 (--block 64 does not divide 96)
r pipeline --model "$M" --workdir "$W/p4" --plans-dir "$W/p4 plans" --profile-lengths 96 --samples 1 --validate-length 128 --validate-samples 1 --densities 0.5 --source generated --device cpu
# valid: one calibration sample at 256 tokens (a byte-level pass-key prompt needs 246),
# validation at 320, one density; plans into a folder beside the work folder
r pipeline --model "$M" --workdir "$W/p5" --plans-dir "$W/p5 plans" --profile-lengths 256 --samples 1 --validate-length 320 --validate-samples 1 --densities 0.5 --source generated --device cpu
ls -R "$W/p5" "$W/p5 plans" 2>/dev/null | head -30
ls -R "$W/p4" "$W/p4 plans" 2>/dev/null | head -30
