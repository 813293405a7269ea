#!/usr/bin/env bash
# Output paths: an existing file where a folder goes, a folder where a file goes, a path
# under a file, a relative path with .. in it, for every command that writes. Run from
# the repository root; every run's exit code and message.
set -u
MOA=${MOA:-moa}; MC=${MC:-moa-compile}
W=${W:-/tmp/s37-user/w/outputs}; rm -rf "$W"; mkdir -p "$W/dir" "$W/sub"; echo keep > "$W/file"
P=plans/fixture-gqa.toml
r() { echo "== $*"; "$@" > "$W/out.txt" 2>&1; rc=$?; grep -v "^moa\(-compile\)\? failed" "$W/out.txt" | head -4 | cut -c1-300; echo "   exit $rc"; }
r "$MC" $P -o "$W/file" -q
r "$MC" $P -o "$W/file/x" -q
r "$MOA" plan export $P -o "$W/dir"
r "$MOA" plan export $P -o "$W/file/x.json"
r "$MOA" plan export $P -o "$W/file"; echo "   file now: $(head -c 40 "$W/file" | tr '\n' ' ')"; echo keep > "$W/file"
r "$MOA" plan export $P -o "$W/sub/./p.json"
r "$MOA" plan import "$W/sub/p.json" --layers 3 --heads 8 --kv-heads 2 --head-dim 64 --max-context 1024 -o "$W/dir"
r "$MOA" plan import "$W/sub/p.json" --layers 3 --heads 8 --kv-heads 2 --head-dim 64 --max-context 1024 -o "$W/file/y.toml"
r "$MOA" model random --like smollm2-135m -o "$W/file"
r "$MOA" model random --like smollm2-135m -o "$W/dir-nonempty-check" --seed 1 --help
echo x > "$W/dir/x"; r "$MOA" model random --like smollm2-135m -o "$W/dir"
r "$MOA" calib --out "$W/dir" --lengths 1024 --samples 1 --source generated
r "$MOA" calib --out "$W/file/c.jsonl" --lengths 1024 --samples 1 --source generated
r "$MOA" eval --backend cpu --json "$W/dir" --lengths 1024
r "$MOA" eval --backend cpu --markdown "$W/file/m.md" --lengths 1024
r "$MOA" eval --backend cpu --heatmaps "$W/file" --lengths 1024
r "$MOA" optimize --profile "$W/file" --density 0.5 -o "$W/file"
r "$MOA" profile --calib "$W/file" --lengths 1024 -o "$W/file"
r "$MOA" validate --calib "$W/file" --plan $P -o "$W/dir"
r "$MOA" pipeline --workdir "$W/file" --source generated
r "$MOA" pipeline --plans-dir "$W/file" --source generated
