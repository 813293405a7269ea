#!/bin/bash
# Round 19's leftovers, after the fixes: model info on folders whose header lacks or
# misshapes a tensor (round 19's mkmodels.py folders under m/), a plan name with control
# characters, an unwritable -o. Run from a scratch folder where
# `python3 benches/new-user/s33/mkmodels.py` made m/ (it needs rnd/ from
# `moa model random --like smollm2-135m -o rnd`). BIN: the binaries' folder.
B=${BIN:-/tmp/s34-bin}
for m in m/hf-missing-q m/hf-shape-q m/hf-f8-q m/hf-cfg-layers-big rnd; do
  echo "### moa model info $m"; "$B/moa" model info "$m" 2>&1 | grep -E "^(tensor_types|unreadable|weights) "; echo "exit ${PIPESTATUS[0]}"
done
# PLAN: plans/fixture-gqa.toml of the checkout.
plan=${PLAN:?set PLAN to plans/fixture-gqa.toml of the checkout}
sed 's/^name = "fixture-gqa"/name = "two\\nlines\\u001b[2J"/' "$plan" > odd.toml
rm -rf odd-out
echo "### moa-compile odd.toml -o odd-out, then fixture-gqa into the same folder"
"$B/moa-compile" odd.toml -o odd-out --target wgsl -q; "$B/moa-compile" "$plan" -o odd-out --target wgsl 2>&1 | cat -A | grep note
echo "### moa plan show odd.toml --prompt-len 100 (first line)"
"$B/moa" plan show odd.toml --prompt-len 100 | head -1 | cat -A
echo "### moa-compile of a 1024-layer plan into /proc/moa-x/out (unwritable): time to the refusal"
python3 - <<'PY'
s = open("odd.toml").read()
head, rest = s.split("[[layers]]", 1)
one = "[[layers]]" + rest.split("[[layers]]")[0]
open("big1024.toml", "w").write(head.replace("layers = 3", "layers = 1024") + one * 1024)
PY
s=$(date +%s.%N); "$B/moa-compile" big1024.toml -o /proc/moa-x/out 2>&1; echo "exit $? after $(echo "$(date +%s.%N) - $s" | bc | cut -c1-5) s"
