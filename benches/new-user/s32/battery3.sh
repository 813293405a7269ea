#!/bin/bash
# bad inputs other than plan TOML, to every subcommand that reads a file
export XDG_RUNTIME_DIR=/tmp/xdg-s32-user
B=/tmp/s32-user-bin; I=/tmp/s32-user-w/in; W=/tmp/s32-user-w
one() { local label=$1; shift; s=$(date +%s.%N); out=$(timeout 120 "$@" 2>&1 >/dev/null); rc=$?; e=$(date +%s.%N); printf '### %s rc=%s %.2fs\n%s\n' "$label" "$rc" "$(echo "$e - $s" | bc)" "$(echo "$out" | grep -v '^\s*$' | tail -3 | cut -c1-500)"; }
for f in empty.txt adir garbage.bin utf16.txt up-big.json up-ragged.json up-beta2.json up-unknown.json up-nobetas.json up-type.json; do
  one "import $f" $B/moa plan import $I/$f --layers 1 --heads 1 --kv-heads 1 --head-dim 64 -o $W/imp.toml
done
for f in empty.txt adir garbage.bin utf16.txt; do
  one "model-info $f" $B/moa model info $I/$f
  one "generate-model $f" $B/moa generate --dense --model $I/$f --prompt hi
  one "generate-prompt-file $f" $B/moa generate --dense --prompt-file $I/$f --max-new-tokens 1
  one "calib-model $f" $B/moa calib --out $W/c.jsonl --model $I/$f --lengths 256 --samples 1
  one "profile-calib $f" $B/moa profile --calib $I/$f --lengths 256 -o $W/p3
  one "validate-calib $f" $B/moa validate --calib $I/$f --plan "/tmp/s32-user clone/plans/smollm2-135m-moa-50.toml"
  one "diagnose-calib $f" $B/moa diagnose --calib $I/$f --plan "/tmp/s32-user clone/plans/smollm2-135m-moa-50.toml"
  one "optimize-profile $f" $B/moa optimize --profile $I/$f --density 0.5 -o $W/o3
  one "eval-merge $f" $B/moa eval --plan "/tmp/s32-user clone/plans/smollm2-135m-moa-50.toml" --merge $I/$f --lengths 256 --depths 1 --ppl-rows 0
  one "eval-ppl-text $f" $B/moa eval --plan "/tmp/s32-user clone/plans/smollm2-135m-moa-50.toml" --ppl-text $I/$f --lengths 256 --depths 1 --tasks passkey
done
for n in 18446744073709551616 -1 0; do
  one "generate-max-new $n" $B/moa generate --dense --prompt hi --max-new-tokens=$n
  one "calib-samples $n" $B/moa calib --out $W/c.jsonl --lengths 256 --samples=$n
  one "calib-lengths $n" $B/moa calib --out $W/c.jsonl --lengths=$n --samples 1
  one "eval-depths $n" $B/moa eval --plan "/tmp/s32-user clone/plans/smollm2-135m-moa-50.toml" --lengths 256 --depths=$n --ppl-rows 0
  one "optimize-density $n" $B/moa optimize --profile $W/prof/influence_256.safetensors --density=$n -o $W/o3
  one "profile-block $n" $B/moa profile --calib $W/calib.jsonl --lengths 256 --block=$n -o $W/p4
  one "plan-show-prompt-len $n" $B/moa plan show "/tmp/s32-user clone/plans/smollm2-135m-moa-50.toml" --prompt-len=$n
  one "maxbatch-memory $n" $B/moa plan show "/tmp/s32-user clone/plans/smollm2-135m-moa-50.toml" --max-batch --like smollm2-135m --prompt-len 100 --memory=$n
  one "random-seed $n" $B/moa model random --like smollm2-135m -o $W/rnd-$n --seed=$n
  one "pipeline-samples $n" $B/moa pipeline --workdir $W/pw3 --plans-dir $W/pp3 --source generated --samples=$n
done
echo done
