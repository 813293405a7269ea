#!/usr/bin/env bash
# moa-compile's output byte for byte: the same plan twice, from another working directory
# (relative and absolute paths), under other LANG/LC_ALL/TZ/umask, HOME unset, through a
# pipe, with --target wgsl then cuda into one folder against --target all, and the plan
# with CRLF line ends and a BOM (the manifest records the plan's text?). diff -r each.
set -u
MC=${MC:-moa-compile}
R=$PWD; W=${W:-/tmp/s37-user/w/determinism}; rm -rf "$W"; mkdir -p "$W/elsewhere"
P=plans/smollm2-135m-moa-50.toml
"$MC" "$P" -o "$W/a" -q
"$MC" "$P" -o "$W/b" -q
(cd "$W/elsewhere" && LANG=de_DE.UTF-8 LC_ALL=C TZ=Pacific/Kiritimati "$MC" "$R/$P" -o c -q; mv c "$W/c")
(umask 077; env -u HOME "$MC" "$P" -o "$W/d" -q)
"$MC" - -o "$W/e" -q < "$P"
"$MC" "$P" -o "$W/f" --target wgsl -q; "$MC" "$P" -o "$W/f" --target cuda -q; "$MC" "$P" -o "$W/f" --target all -q
python3 -c "import sys; t=open(sys.argv[1],encoding='utf-8').read(); open(sys.argv[2],'wb').write(b'\xef\xbb\xbf'+t.replace('\n','\r\n').encode())" "$P" "$W/crlf-bom.toml"
"$MC" "$W/crlf-bom.toml" -o "$W/g" -q
for x in b c d e f g; do
  if diff -r "$W/a" "$W/$x" > "$W/diff-$x.txt"; then echo "a vs $x: identical"; else echo "a vs $x: DIFFERS ($(wc -l < "$W/diff-$x.txt") lines)"; head -5 "$W/diff-$x.txt"; fi
done
echo "modes: a $(stat -c %a "$W/a/manifest.json") d (umask 077) $(stat -c %a "$W/d/manifest.json")"
"$MC" "$P" -o "$W/g" --check -q; echo "--check of the CRLF+BOM plan's folder against the LF plan: exit $?"
