#!/usr/bin/env bash
# Two moa-compile processes into one output folder at once: the same plan twice, and two
# different plans; then whether the folder is whole (--check against each plan) and what
# each process said. Run from the repository root (plans/ relative).
set -u
MC=${MC:-moa-compile}
W=${W:-/tmp/s37-user/w/concurrent}; rm -rf "$W"; mkdir -p "$W"
A=plans/smollm2-135m-moa-50.toml; B=plans/smollm2-135m-uniform-50.toml
for try in 1 2 3 4 5 6; do
  for pair in "$A $A" "$A $B"; do
    set -- $pair
    O="$W/out-$try-$(basename $1 .toml)-$(basename $2 .toml)"
    "$MC" "$1" -o "$O" -q > "$O.1.log" 2>&1 & p1=$!
    "$MC" "$2" -o "$O" -q > "$O.2.log" 2>&1 & p2=$!
    wait $p1; r1=$?; wait $p2; r2=$?
    "$MC" "$1" -o "$O" --check -q > "$O.c1.log" 2>&1; c1=$?
    "$MC" "$2" -o "$O" --check -q > "$O.c2.log" 2>&1; c2=$?
    echo "try $try $(basename $1) + $(basename $2): exits $r1 $r2; --check $c1 $c2; files $(find "$O" -type f | wc -l); leftovers: $(find "$O" -name '*.tmp*' -o -name '.*' -type f | wc -l)"
    for l in 1 2 c1 c2; do sed "s/^/    $l: /" "$O.$l.log" | head -4; done
  done
done
