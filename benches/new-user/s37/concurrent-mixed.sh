#!/usr/bin/env bash
# Two different plans compiled into one folder at once, N times: does the folder end as
# one plan's whole output (one --check 0), or a mixture neither matches?
set -u
MC=${MC:-moa-compile}; N=${N:-15}
W=${W:-/tmp/s37-user/w/mixed}; rm -rf "$W"; mkdir -p "$W"
A=plans/smollm2-135m-moa-50.toml; B=plans/smollm2-135m-uniform-50.toml
whole=0; mixed=0
for i in $(seq 1 $N); do
  O="$W/out-$i"
  "$MC" $A -o "$O" -q > "$O.1.log" 2>&1 & p1=$!
  "$MC" $B -o "$O" -q > "$O.2.log" 2>&1 & p2=$!
  wait $p1; r1=$?; wait $p2; r2=$?
  "$MC" $A -o "$O" --check -q > /dev/null 2>&1; c1=$?
  "$MC" $B -o "$O" --check -q > /dev/null 2>&1; c2=$?
  if [ $c1 = 0 ] || [ $c2 = 0 ]; then whole=$((whole+1)); else mixed=$((mixed+1)); echo "try $i: exits $r1 $r2, neither --check matches ($c1 $c2)"; cat "$O.1.log" "$O.2.log" | sed 's/^/    /'; fi
done
echo "whole $whole, mixed $mixed of $N"
