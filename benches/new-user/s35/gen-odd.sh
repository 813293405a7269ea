#!/bin/bash
# `moa generate` with odd prompts (run from a scratch folder; MOA names the binary):
# empty, blank, a directory, a device, UTF-16 and Latin-1 files, longer than the
# context, only special tokens (with and without the chat template).
M=${MOA:-moa}
: > empty.txt; printf '\xff\xfe\x00h\xc3\x28 bad' > bad-utf8.txt; printf 'ok \xe9t\xe9 latin1\n' > latin1.txt
printf '   \n\t\n' > blank.txt; python3 -c "print('word '*20000)" > long.txt; mkdir -p adir
for args in "--prompt ''" "--prompt-file empty.txt" "--prompt-file bad-utf8.txt" "--prompt-file latin1.txt" \
  "--prompt-file blank.txt" "--prompt '   '" "--prompt-file adir" "--prompt-file /dev/null" \
  "--prompt-file missing.txt" "--prompt-file long.txt --max-new-tokens 4" "--raw --prompt ''" \
  "--prompt hi --max-new-tokens 0" "--prompt hi --max-new-tokens 100000" \
  "--prompt '<|im_start|><|im_end|>' --max-new-tokens 8 --print-ids" \
  "--raw --prompt '<|endoftext|>' --max-new-tokens 8 --print-ids"; do
  echo "### moa generate $args"; s=$(date +%s.%N)
  eval timeout 600 "$M" generate $args > out.txt 2> err.txt; rc=$?
  echo "exit $rc in $(echo "$(date +%s.%N) - $s" | bc | cut -c1-5)s"; tail -c 900 err.txt; echo "--- stdout:"; head -c 300 out.txt; echo
done
