#!/usr/bin/env bash
# Round 24: the default model through the pipeline on a small budget, the plan written,
# then fed back to moa-compile, moa plan show, moa generate (with and without --kernels)
# and moa eval --backend cpu, as the README's steps go.
# usage: MOA=path/to/moa MOA_COMPILE=path/to/moa-compile smollm2-roundtrip.sh SCRATCH
set -u
MOA=${MOA:-moa}; MC=${MOA_COMPILE:-moa-compile}
S=$1; mkdir -p "$S"; cd "$S" || exit 1
rm -rf work plans kernels
r() { echo "[$*]"; local t0=$(date +%s); timeout 590 "$@" > out 2>&1; echo "exit $? in $(( $(date +%s) - t0 )) s: $(grep -vE '^\s*$' out | grep -v elapsed | tail -4 | cut -c1-300 | tr '\n' '|')"; }
r "$MOA" pipeline --workdir work --plans-dir plans --profile-lengths 256 --samples 1 --validate-length 320 --validate-samples 1 --densities 0.5 --time-limit 10
ls plans
P=$(ls plans/*.toml | head -1)
grep -E "max_context_tokens|max_new_tokens|target_densities" "$P"
r "$MC" "$P" -o kernels
r "$MC" "$P" -o kernels --check
r "$MOA" plan show "$P"
r "$MOA" generate --plan "$P" --kernels kernels --prompt "What is 2+2?" --max-new-tokens 12
r "$MOA" generate --plan "$P" --prompt "What is 2+2?" --max-new-tokens 12
r "$MOA" eval --backend cpu --plan "$P" --lengths 512 --depths 1 --ppl-rows 1 --ppl-length 512 --ppl-scored 32 --quiet
