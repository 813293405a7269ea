#!/bin/bash
# Builds the three carry folders of session 10's device calls (issue 9); each call runs in
# the lead's checkout, so the folders (with the call scripts) go there as .dev-s10-plans/:
#   .dev-s10-plans/a: moa.xz (the `cuda`-feature binary, stripped) + the GGUF's first 42 MB
#                     (xz'd); .dev-s10-plans/b: the rest of the GGUF, its sha256, python3-doc
#                     sources (pydoc.txz: tutorial/faq/howto for calibration's quote task;
#                     ppl.txz: 8 library/ pages for validation text, reference/ for test
#                     text), plans/, run.sh, select25.py, ppl_stats.py.
# Usage: pack.sh data          (GGUF from `moa model fetch`, in $MOA_CACHE or ~/.cache/moa)
#        pack.sh bin CUDA_MOA  (the binary from scripts/build-cuda-profiler.sh)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$(dirname "$(dirname "$here")")")"
a="$repo/.dev-s10-plans/a"; b="$repo/.dev-s10-plans/b"
case "${1:-}" in
bin)
    bin=${2:?usage: pack.sh bin CUDA_MOA}
    mkdir -p "$a"; rm -f "$a/moa" "$a/moa.xz"
    strip -o "$a/moa" "$bin"; xz -T2 -9 "$a/moa"
    # The scripts and plans again (they may have changed since `pack.sh data`).
    cp "$repo"/plans/smollm2-135m-moa-25.toml "$repo"/plans/smollm2-135m-moa-50.toml "$b/plans/"
    cp "$here/run.sh" "$repo/benches/profiling/s9/select25.py" "$repo/benches/eval/ppl_stats.py" "$b/"
    # Split the xz'd GGUF in three, so that each call's carry plus the tracked tree stays
    # well under 64 MiB: A1 holds the binary and the first part, A2 the second, B the rest.
    g="$repo/.dev-s10-plans/gguf.xz"; a2="$repo/.dev-s10-plans/a2"
    rm -rf "$a2"; mkdir -p "$a2"; rm -f "$a"/gguf.xz.part* "$b"/gguf.xz.part*
    head -c 30000000 "$g" >"$a/gguf.xz.part1"
    dd if="$g" of="$a2/gguf.xz.part2" iflag=skip_bytes,count_bytes skip=30000000 count=40000000 status=none
    tail -c +70000001 "$g" >"$b/gguf.xz.part3"
    cp "$here/callA.sh" "$a/"; cp "$here/callA.sh" "$a2/"; cp "$here/callB.sh" "$b/"
    du -sh "$a2"
    ;;
data)
    gguf="${MOA_CACHE:-$HOME/.cache/moa}/SmolLM2-135M-Instruct.Q4_1.gguf"
    src=/usr/share/doc/python3/html/_sources
    rm -rf "$b" "$a/gguf.xz.part1"; mkdir -p "$a" "$b/plans"
    xz -T2 -9 -c "$gguf" >"$repo/.dev-s10-plans/gguf.xz"
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
    ;;
*) echo "usage: pack.sh data | pack.sh bin CUDA_MOA" >&2; exit 2 ;;
esac
du -sh "$a" "$b" 2>/dev/null || true
