#!/bin/bash
# Journey C: `moa plan import` and `moa plan show` of the upstream plans and of the
# malformed copies mkbad-upstream.py writes. Usage (from the repository root):
# plan-import.sh BIN_DIR UP_DIR
BIN=${1:?bin}; UP=${2:?dir of bad copies}
S="--layers 16 --heads 32 --kv-heads 8 --head-dim 64"
for f in "$UP"/*.json; do
  n=$(basename "$f" .json)
  out=$(timeout 60 "$BIN/moa" plan import "$f" $S --max-context 8192 -o "$UP/$n.toml" 2>&1); rc=$?
  echo "import $n rc=$rc: $(echo "$out" | grep -v '^moa: context' | tr '\n' ' ' | cut -c1-400)"
  if [ $rc = 0 ]; then
    out=$(timeout 60 "$BIN/moa" plan show "$UP/$n.toml" --prompt-len 1000 2>&1); rc=$?
    echo "  show rc=$rc: $(echo "$out" | tail -3 | tr '\n' ' ' | cut -c1-300)"
    out=$(timeout 60 "$BIN/moa" plan show "$f" --max-batch --like llama-3.2-1b --prompt-len 1000 --memory 10 2>&1); rc=$?
    echo "  show --max-batch of the JSON rc=$rc: $(echo "$out" | tail -2 | tr '\n' ' ' | cut -c1-300)"
  fi
done
for d in tests/fixtures/upstream-plans/*/; do
  for f in "$d"*.json; do
    out=$(timeout 120 "$BIN/moa" plan import "$f" --layers 32 --heads 32 --kv-heads 8 --head-dim 128 2>&1 >/dev/null); rc=$?; echo "fixture $(basename $d)/$(basename $f) as 32x32: rc=$rc $(echo "$out" | tail -1 | cut -c1-300)"
  done
done
