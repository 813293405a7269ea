#!/usr/bin/env bash
# Prefill and decode tokens/s of `moa generate`, the default plan against dense, at
# prompt lengths of about 1k, 4k and 8k tokens (generated filler text, deterministic).
# Usage: scripts/bench-generate.sh [path/to/moa]   (default: target/release/moa)
# Env:   MOA_BENCH_LENGTHS="1k 4k 8k"  MOA_BENCH_NEW=64  MOA_BENCH_ROWS=1
set -euo pipefail
moa="${1:-target/release/moa}"
lengths="${MOA_BENCH_LENGTHS:-1k 4k 8k}"
new="${MOA_BENCH_NEW:-64}"
rows="${MOA_BENCH_ROWS:-1}"
dir="$(mktemp -d)"
python3 - "$dir" <<'PY'
import random, sys
words = ("the of and to in is was that for on with as by at from his her their this which an be are "
         "were had have not but all they one there been so can more if no out some would what when who "
         "will up about into than them could time only other new its over such also after these two may "
         "first any our how most very").split()
# About 1.1 SmolLM2 tokens per word; 8k stays under the 8192-token context with 64 new tokens.
for name, n in [("1k", 900), ("4k", 3650), ("8k", 7100)]:
    rng = random.Random(1)
    s = [" ".join(rng.choice(words) for _ in range(12)).capitalize() + "." for _ in range(n // 12)]
    open(f"{sys.argv[1]}/{name}.txt", "w").write(" ".join(s) + "\nThe pass key is 12345. Remember it.\n")
PY
for len in $lengths; do
    for mode in plan dense; do
        args=(generate --raw --max-new-tokens "$new" --ignore-eos)
        for _ in $(seq "$rows"); do args+=(--prompt-file "$dir/$len.txt"); done
        [ "$mode" = dense ] && args+=(--dense)
        echo "== prompt $len, $mode, $rows row(s)"
        "$moa" "${args[@]}" 2>&1 >/dev/null | grep -E "^moa:|^prefill:|^KV cache" || true
    done
done
rm -rf "$dir"
