#!/bin/bash
# `moa plan` round trips (run from the repository root; MOA, MOA_COMPILE name the
# binaries; OUT a scratch folder): every upstream fixture imported, exported and imported
# again (values compared with the original JSON, TOMLs diffed), the SmolLM2 plan exported
# and re-imported, and moa-compile --check of a reformatted plan (CRLF, 16.0, 5e-1,
# comments) against the original's folder.
M=${MOA:-moa}; MC=${MOA_COMPILE:-moa-compile}; OUT=${OUT:-/tmp/rt}; mkdir -p "$OUT"
for j in tests/fixtures/upstream-plans/*/*.json; do
  set -- $(python3 -c "import json,sys;d=json.load(open(sys.argv[1]));print(len(d['alphas']),len(d['alphas'][0]))" "$j")
  k=$(( $2 / 4 )); [ $k = 0 ] && k=1
  "$M" plan import "$j" --layers $1 --heads $2 --kv-heads $k --head-dim 128 -o "$OUT/t1.toml" 2>/dev/null; r1=$?
  "$M" plan export "$OUT/t1.toml" -o "$OUT/b.json" 2>/dev/null; r2=$?
  "$M" plan import "$OUT/b.json" --layers $1 --heads $2 --kv-heads $k --head-dim 128 -o "$OUT/t2.toml" 2>/dev/null; r3=$?
  same=$(python3 -c "import json,sys;print('values equal' if json.load(open(sys.argv[1]))==json.load(open(sys.argv[2])) else 'DIFFER')" "$j" "$OUT/b.json")
  echo "$j: exits $r1 $r2 $r3; $same; TOML lines differing: $(diff "$OUT/t1.toml" "$OUT/t2.toml" | grep -c '^[<>]') ($(diff "$OUT/t1.toml" "$OUT/t2.toml" | grep '^<' | cut -c1-60))"
done
"$M" plan export plans/smollm2-135m-moa-50.toml -o "$OUT/a.json" 2>/dev/null
"$M" plan import "$OUT/a.json" --layers 30 --heads 9 --kv-heads 3 --head-dim 64 --max-context 8192 -o "$OUT/s1.toml" 2>/dev/null
"$M" plan export "$OUT/s1.toml" -o "$OUT/a2.json" 2>/dev/null; cmp "$OUT/a.json" "$OUT/a2.json" && echo "smollm2-135m-moa-50: export of the import is byte-identical"
rm -rf "$OUT/chk"; "$MC" plans/fixture-gqa.toml -o "$OUT/chk" -q
python3 -c "
t=open('plans/fixture-gqa.toml').read().replace('beta = [0.5, 0.5, 0.0','beta = [0.50, 5e-1, 0.0').replace('sink_tokens = 16','sink_tokens = 16.0 # comment')
open('$OUT/reformatted.toml','w',newline='').write(t.replace('\n','\r\n'))"
"$MC" "$OUT/reformatted.toml" -o "$OUT/chk" --check; echo "moa-compile --check of the reformatted plan: exit $?"
