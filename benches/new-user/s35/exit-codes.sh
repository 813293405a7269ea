#!/bin/bash
# Every moa subcommand bare, with an unknown flag and with --help: exit code and the
# first lines of stderr (MOA names the binary; 20 s limit, so a command that starts real
# work with no arguments shows as 124).
M=${MOA:-moa}
for c in "" "plan" "plan import" "plan export" "plan show" "model" "model fetch" "model info" "model random" \
  generate optimize calib profile validate pipeline eval diagnose bench help; do
  for extra in "" "--bogus" "--help"; do
    timeout 20 "$M" $c $extra > o.txt 2> e.txt; rc=$?
    printf "%-28s rc %3d  err-lines %2d  %s\n" "moa $c $extra" $rc $(wc -l < e.txt) "$(head -3 e.txt | tr '\n' '|' | cut -c1-150)"
  done
done
for a in "--plan nonexist.toml" "--like gpt2" "--model /nonexistent" "--dtype f64" "--prompt 100000" "--batch 0" \
  "--batch max --max-batch 0" "--json /proc/x.json" "--parity 0" "--new 0" "--prefill-sub 0" "--gpu 99" "--checks-only" "--seed -1"; do
  timeout 20 "$M" bench $a > o.txt 2> e.txt; echo "bench $a -> $? : $(grep -v '^$' e.txt | tr '\n' ' ' | cut -c1-260)"
done
