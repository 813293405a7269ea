#!/usr/bin/env bash
# Round 24 (round 23's leftover): `moa eval --ppl-text` with the same prose saved as an
# editor would (LF with a final newline), without the final newline, with CRLF (Notepad),
# with a BOM, with blank lines at the end; one perplexity each (the tiny byte-level model,
# CPU reference, 3 windows of 64 tokens, the last one ending at the text's end).
# usage: MOA=path/to/moa ppl-text.sh MODEL SCRATCH
set -u
MOA=${MOA:-moa}
M=$1; S=$2
mkdir -p "$S"
T="$S/prose-lf.txt"
python3 - "$S" <<'PY'
import sys, os
s = sys.argv[1]
para = ("The quick brown fox jumps over the lazy dog. A perplexity text is prose the "
        "model never saw in calibration.\nIt has lines, and paragraphs.\n\nHere is the "
        "second paragraph, which ends the file.")
w = lambda n, b: open(os.path.join(s, n), "wb").write(b)
body = para.encode()
w("prose-lf.txt", body + b"\n")
w("prose-noeol.txt", body)
w("prose-crlf.txt", body.replace(b"\n", b"\r\n") + b"\r\n")
w("prose-cr.txt", body.replace(b"\n", b"\r") + b"\r")
w("prose-bom.txt", b"\xef\xbb\xbf" + body + b"\n")
w("prose-blank-end.txt", body + b"\n\n\n")
PY
for f in lf noeol crlf cr bom blank-end; do
  printf '%-10s ' "$f"
  timeout 300 "$MOA" eval --backend cpu --model "$M" --lengths 240 --depths 1 --tasks passkey \
    --ppl-text "$S/prose-$f.txt" --ppl-rows 3 --ppl-length 64 --ppl-scored 16 --quiet --json "$S/e-$f.json" > "$S/out" 2>&1
  echo "exit $? $(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); p=r['plans'][0]; print('dense perplexity', p['perplexity'])" "$S/e-$f.json" 2>&1 | head -c 300)"
done
echo "two files (LF, then CRLF without a final line end):"
for pair in "lf lf" "noeol crlf" "crlf noeol"; do
  set -- $pair
  printf '%-12s ' "$1+$2"
  timeout 300 "$MOA" eval --backend cpu --model "$M" --lengths 240 --depths 1 --tasks passkey \
    --ppl-text "$S/prose-$1.txt" --ppl-text "$S/prose-$2.txt" --ppl-rows 3 --ppl-length 64 --ppl-scored 16 --quiet --json "$S/e2.json" > "$S/out" 2>&1
  echo "exit $? $(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); p=r['plans'][0]; print('dense perplexity', p['perplexity'])" "$S/e2.json" 2>&1 | head -c 300)"
done
