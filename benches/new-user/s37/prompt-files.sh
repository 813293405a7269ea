#!/usr/bin/env bash
# Prompt files as a user writes them: a trailing newline (echo, every editor), CRLF line
# ends, a BOM, only a newline, an inner empty line; the same question each time, greedy
# 8 tokens on the fetched SmolLM2 (lavapipe), prompt and answer ids printed.
set -u
MOA=${MOA:-moa}
W=${W:-/tmp/s37-user/w/prompts}; mkdir -p "$W"
printf 'What is 2+2?' > "$W/plain.txt"
printf 'What is 2+2?\n' > "$W/newline.txt"
printf 'What is 2+2?\r\n' > "$W/crlf.txt"
printf '\xef\xbb\xbfWhat is 2+2?\r\n' > "$W/bom-crlf.txt"
printf 'Line one.\r\n\r\nWhat is 2+2?\r\n' > "$W/crlf-lines.txt"
printf 'Line one.\n\nWhat is 2+2?\n' > "$W/lf-lines.txt"
printf '\n' > "$W/only-newline.txt"
run() { echo "== $*"; "$MOA" generate --max-new-tokens 8 --print-ids "$@" 2>&1 | grep -v "^wgpu\|tok/s\|KV cache\|^moa: loading\|load" ; echo "exit ${PIPESTATUS[0]}"; }
run --prompt 'What is 2+2?'
for f in plain newline crlf bom-crlf crlf-lines lf-lines only-newline; do run --prompt-file "$W/$f.txt"; done
echo 'What is 2+2?' | run --prompt-file -
run --raw --prompt-file "$W/newline.txt"
run --raw --prompt 'What is 2+2?'
