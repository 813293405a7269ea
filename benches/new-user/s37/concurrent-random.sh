#!/usr/bin/env bash
# Two `moa model random` into one new folder at once (seeds 1 and 2), then what the folder
# holds and whether it loads; and two `moa plan import -o` of one file at once.
set -u
MOA=${MOA:-moa}
W=${W:-/tmp/s37-user/w/conc-random}; rm -rf "$W"; mkdir -p "$W"
"$MOA" model random --like smollm2-135m -o "$W/m" --seed 1 > "$W/1.log" 2>&1 & p1=$!
"$MOA" model random --like smollm2-135m -o "$W/m" --seed 2 > "$W/2.log" 2>&1 & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
echo "exits $r1 $r2"; sed 's/^/  1: /' "$W/1.log" | tail -3; sed 's/^/  2: /' "$W/2.log" | tail -3
ls -la "$W" "$W/m" | sed 's/^/  /'
"$MOA" model info "$W/m" 2>&1 | head -3 | sed 's/^/  info: /'
