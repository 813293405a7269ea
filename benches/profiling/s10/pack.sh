#!/bin/bash
# Builds the two carry folders of session 10's device calls (issue 9) from this checkout:
#   .dev-s10-plans/a: moa.xz (the `cuda`-feature binary, stripped) + the GGUF's first 42 MB
#                     (xz'd); .dev-s10-plans/b: the rest of the GGUF, its sha256, python3-doc
#                     sources (pydoc.txz: tutorial/faq/howto for calibration's quote task;
#                     ppl.txz: library/ for validation text, reference/ for test text),
#                     plans/, run.sh, select25.py, ppl_stats.py.
# Usage: pack.sh CUDA_MOA   (GGUF from `moa model fetch`, in $MOA_CACHE or ~/.cache/moa)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
bin=${1:?usage: pack.sh CUDA_MOA}
gguf="${MOA_CACHE:-$HOME/.cache/moa}/SmolLM2-135M-Instruct.Q4_1.gguf"
src=/usr/share/doc/python3/html/_sources
a="$repo/.dev-s10-plans/a"; b="$repo/.dev-s10-plans/b"
rm -rf "$a" "$b"; mkdir -p "$a" "$b/plans"
strip -o "$a/moa" "$bin"; xz -T2 -6 "$a/moa"
xz -T2 -9 -c "$gguf" >"$b/gguf.xz"
split -b 42000000 -d -a 1 "$b/gguf.xz" "$b/gguf.xz.p"
mv "$b/gguf.xz.p0" "$a/gguf.xz.part1"; mv "$b/gguf.xz.p1" "$b/gguf.xz.part2"; rm "$b/gguf.xz"
sha256sum "$gguf" | cut -c1-64 >"$b/gguf.sha256"
tar cJf "$b/pydoc.txz" -C "$src" tutorial faq howto
stage=$(mktemp -d); mkdir -p "$stage/ppl/library" "$stage/ppl/reference"
for f in collections io pathlib pickle statistics string threading time; do
    cp "$src/library/$f.rst.txt" "$stage/ppl/library/"
done
cp "$src"/reference/*.rst.txt "$stage/ppl/reference/"
tar cJf "$b/ppl.txz" -C "$stage" ppl; rm -rf "$stage"
cp "$repo"/plans/smollm2-135m-moa-25.toml "$repo"/plans/smollm2-135m-moa-50.toml "$b/plans/"
cp "$here/run.sh" "$b/"
cp "$repo/benches/profiling/s9/select25.py" "$repo/benches/eval/ppl_stats.py" "$b/"
du -sh "$a" "$b"
