#!/bin/bash
# Ctrl-C (SIGINT, sent by `timeout -s INT`: a `cmd &` of a script ignores SIGINT) on the
# long commands, then the re-run. Run from a scratch folder holding big1024.toml
# (leftovers.sh makes it); PLAN50: plans/smollm2-135m-moa-50.toml; BIN: the binaries.
B=${BIN:-/tmp/s34-bin}
P=${PLAN50:?set PLAN50 to plans/smollm2-135m-moa-50.toml of the checkout}
rm -rf big-out; echo "### moa-compile big1024.toml -o big-out, SIGINT at 3 s (generating)"
timeout -s INT 3 "$B/moa-compile" big1024.toml -o big-out -q; echo "exit $?; big-out: $(ls big-out 2>&1)"
echo "### again, SIGINT at 18 s, then the re-run and --check"
timeout -s INT 18 "$B/moa-compile" big1024.toml -o big-out -q; echo "exit $?; files: $(find big-out -type f 2>/dev/null | wc -l), temporaries: $(find big-out -name '*moa-tmp*' 2>/dev/null | wc -l)"
"$B/moa-compile" big1024.toml -o big-out -q; echo "re-run exit $?"
"$B/moa-compile" big1024.toml -o big-out --check -q; echo "--check exit $?"
A=(--backend cpu --plan "$P" --lengths 256 --depths 2 --ppl-rows 1 --ppl-length 256 --ppl-scored 64)
rm -f ev.json ev.md ev2.json; echo "### moa eval --backend cpu ... --json ev.json, SIGINT once ev.json holds 2 plans"
# Job control on, so the background eval does not ignore SIGINT as a script's `cmd &` does.
set -m
"$B/moa" eval "${A[@]}" --json ev.json --markdown ev.md 2> evint.err & pid=$!
until python3 -c "import json,sys; sys.exit(len(json.load(open('ev.json'))['plans']) < 2)" 2>/dev/null; do sleep 0.3; done
kill -INT "$pid"; wait "$pid"; echo "exit $?"
tr '\r' '\n' < evint.err | grep -v '^$' | awk '!s[$0]++' | tail -2
echo "plans in ev.json: $(python3 -c "import json; print([p['name'] for p in json.load(open('ev.json'))['plans']])")"; ls | grep -c partial
echo "### the re-run with --merge ev.json"
"$B/moa" eval "${A[@]}" --json ev2.json --merge ev.json --quiet; echo "exit $?"
