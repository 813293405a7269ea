#!/bin/bash
# Journey C: moa-compile of plan B into a folder holding plan A's kernels, killed (SIG) during
# its write stage (after the manifest is removed, + DELAY s); then --check, a re-run, and
# diff -r against a clean compile of B (ref-b).
set -m
B=${B:-/tmp/s32-user-bin}; SIG=$1; DELAY=$2; D=/tmp/s32-user-c/kc
rm -rf $D; $B/moa-compile big-a.toml -o $D -q 2>/dev/null
$B/moa-compile big-b.toml -o $D -q 2>/dev/null & pid=$!
while [ -e $D/manifest.json ] && kill -0 $pid 2>/dev/null; do sleep 0.005; done
sleep $DELAY; kill -$SIG $pid 2>/dev/null; wait $pid; rc=$?
tmps=$(find $D -name '*.moa-tmp-*' | wc -l)
man=$([ -e $D/manifest.json ] && echo yes || echo no)
changed=$(diff -rq $D ref-b 2>/dev/null | wc -l)
check=$($B/moa-compile big-b.toml -o $D --check 2>&1 | grep -v "^  " | head -2 | tr '\n' ' ' | cut -c1-220); crc=${PIPESTATUS[0]}
$B/moa-compile big-b.toml -o $D --check >/dev/null 2>&1; crc=$?
re=$($B/moa-compile big-b.toml -o $D 2>&1 | tail -2 | tr "\n" " " | cut -c1-400)
same=$(diff -r $D ref-b >/dev/null && echo identical || echo DIFFERENT)
echo "sig=$SIG delay=$DELAY rc=$rc manifest=$man tmp_files=$tmps files_differing_from_B=$changed check_rc=$crc | rerun: $re | after rerun: $same"
echo "   check said: $check"
