#!/bin/bash
# usage: run1.sh LABEL cmd... ; prints rc and stderr (first 3 lines) per bad plan
B=/tmp/s32-user-bin
label=$1; shift
for f in /tmp/s32-user-w/bad/*.toml; do
  n=$(basename $f .toml)
  args=("${@//PLAN/$f}")
  s=$(date +%s.%N)
  out=$(timeout 60 "${args[@]}" 2>&1 >/tmp/s32-user-w/stdout.txt); rc=$?
  e=$(date +%s.%N)
  printf '### %s %s rc=%s %.2fs\n%s\n' "$label" "$n" "$rc" "$(echo "$e - $s" | bc)" "$(echo "$out" | head -4 | cut -c1-600)"
done
