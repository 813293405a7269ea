#!/bin/bash
# Builds the three carry folders of session 11's device calls (issue 9). Each call runs in
# the lead's checkout, so the folders go there as .dev-s11-plans/{a,a2,b} (ignored by git):
#   a:  moa.xz (the `cuda`-feature binary, stripped) + the GGUF's first 34 MB
#   a2: the next 44 MB of the GGUF
#   b:  the rest, its sha256, python3-doc sources (pydoc.txz: tutorial/faq/howto for the
#       quote task; ppl.txz: 8 library/ pages for validation text, reference/ for test
#       text), plans/, run.sh, select25.py, ppl_stats.py, callB.sh.
# Each call's carry plus the checkout's tracked tree (18.6 MB) must stay under 64 MiB. The
# GGUF travels as it is: xz -9 saved 8% of its 98 MB (4-bit weights hardly compress) and
# took minutes of the 2 shared cores.
# Usage: pack.sh DEST CUDA_MOA   (GGUF from `moa model fetch`, in $MOA_CACHE or ~/.cache/moa)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$(dirname "$(dirname "$here")")")"
dest=${1:?usage: pack.sh DEST CUDA_MOA}; bin=${2:?usage: pack.sh DEST CUDA_MOA}
a="$dest/a"; a2="$dest/a2"; b="$dest/b"
gguf="${MOA_CACHE:-$HOME/.cache/moa}/SmolLM2-135M-Instruct.Q4_1.gguf"
src=/usr/share/doc/python3/html/_sources
mkdir -p "$a"; rm -rf "$a2" "$b"; rm -f "$a"/gguf.part*; mkdir -p "$a2" "$b/plans"
if [ ! -s "$a/moa.xz" ] || [ "$bin" -nt "$a/moa.xz" ]; then
    rm -f "$a/moa" "$a/moa.xz"; strip -o "$a/moa" "$bin"; xz -T2 -9 "$a/moa"
fi
sha256sum "$gguf" | cut -c1-64 >"$b/gguf.sha256"
head -c 34000000 "$gguf" >"$a/gguf.part1"
dd if="$gguf" of="$a2/gguf.part2" iflag=skip_bytes,count_bytes skip=34000000 count=44000000 status=none
tail -c +78000001 "$gguf" >"$b/gguf.part3"
tar cJf "$b/pydoc.txz" -C "$src" tutorial faq howto
stage=$(mktemp -d); mkdir -p "$stage/ppl/library" "$stage/ppl/reference"
for f in collections io pathlib pickle statistics string threading time; do
    cp "$src/library/$f.rst.txt" "$stage/ppl/library/"
done
cp "$src"/reference/*.rst.txt "$stage/ppl/reference/"
tar cJf "$b/ppl.txz" -C "$stage" ppl; rm -rf "$stage"
cp "$repo"/plans/smollm2-135m-moa-25.toml "$repo"/plans/smollm2-135m-moa-50.toml "$b/plans/"
cp "$here/run.sh" "$here/callB.sh" "$repo/benches/profiling/s9/select25.py" "$repo/benches/eval/ppl_stats.py" "$b/"
cp "$here/callA.sh" "$a/"; cp "$here/callA.sh" "$a2/"
du -sh "$a" "$a2" "$b"
