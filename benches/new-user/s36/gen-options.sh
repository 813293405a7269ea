#!/usr/bin/env bash
# Round 22: `moa generate` sampling options combined, on a tiny folder (mkhf.py f32):
# temperature 0 against top-p / top-k, seed reproducibility across runs, --max-new-tokens 0.
# usage: MOA=path/to/moa gen-options.sh MODEL
set -u
MOA=${MOA:-moa}
M=$1
g() { "$MOA" generate --model "$M" --raw --print-ids --dense "$@" > gen.out 2>&1; echo "[$*] exit $?: $(grep -E 'generated|Cause|rror|panick|warning|note|^moa: --' gen.out | tr '\n' '|')"; }
g --prompt "hello world" --max-new-tokens 8
g --prompt "hello world" --max-new-tokens 8 --temperature 0
g --prompt "hello world" --max-new-tokens 8 --temperature 0 --top-p 0.5
g --prompt "hello world" --max-new-tokens 8 --temperature 0 --top-k 5
g --prompt "hello world" --max-new-tokens 8 --temperature 0 --seed 3
g --prompt "hello world" --max-new-tokens 8 --temperature 1 --seed 3
g --prompt "hello world" --max-new-tokens 8 --temperature 1 --seed 3
g --prompt "hello world" --max-new-tokens 8 --temperature 1 --seed 4
g --prompt "hello world" --max-new-tokens 8 --temperature 1
g --prompt "hello world" --max-new-tokens 8 --temperature 1
g --prompt "hello world" --max-new-tokens 8 --temperature 1 --top-p 1e-9 --seed 3
g --prompt "hello world" --max-new-tokens 8 --temperature 1 --top-k 1 --seed 3
g --prompt "hello world" --max-new-tokens 8 --temperature 1 --top-p 0.9 --top-k 3 --seed 3
g --prompt "hello world" --max-new-tokens 8 --temperature 1 --top-p 0.9 --top-k 3 --seed 3 --f32
g --prompt "hello world" --max-new-tokens 8 --top-p 0.9
g --prompt "hello world" --max-new-tokens 8 --top-k 3
g --prompt "hello world" --max-new-tokens 8 --seed 3
g --prompt "hello world" --max-new-tokens 0
g --prompt "hello world" --max-new-tokens 1
g --prompt "hello world" --max-new-tokens 8 --temperature 1e-30 --seed 3
g --prompt "hello world" --max-new-tokens 8 --temperature 100 --seed 3
g --prompt "hello world" --max-new-tokens 8 --temperature -1
g --prompt "hello world" --max-new-tokens 8 --temperature nan
g --prompt "hello world" --max-new-tokens 8 --top-p 0 --temperature 1
g --prompt "hello world" --max-new-tokens 8 --top-p 1.5 --temperature 1
g --prompt "hello world" --max-new-tokens 8 --top-k 0 --temperature 1 --seed 3
g --prompt "hello world" --max-new-tokens 8 --top-k 100000 --temperature 1 --seed 3
g --prompt "hello world" --max-new-tokens 8 --seed 18446744073709551615 --temperature 1
g --prompt "hello world" --max-new-tokens 8 --seed -1 --temperature 1
# One prompt alone and beside another, the same seed: a row's draws depend on the batch.
for p in "--prompt hello" "--prompt hello --prompt world" "--prompt world --prompt hello"; do
    # shellcheck disable=SC2086
    g --max-new-tokens 8 --temperature 1 --seed 3 $p
done
