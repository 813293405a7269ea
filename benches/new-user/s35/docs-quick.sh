#!/bin/bash
# README commands as written, from a clone's root, with this branch's binaries on PATH
# (BIN); W a scratch folder. The --max-batch line is README's Vicuna-7B claim (60 dense /
# 120 plan rows at --memory 135); `moa eval` with no --plan scores dense alone.
export PATH="${BIN:?}:$PATH"; W=${W:-/tmp/s35w}; mkdir -p "$W"
t() { echo "### $*"; local s=$(date +%s.%N); "$@" 2>&1 | tail -n 8; echo "exit ${PIPESTATUS[0]} ($(echo "$(date +%s.%N) - $s" | bc | cut -c1-5) s)"; }
t moa model fetch
t moa model info
t moa plan show plans/smollm2-135m-moa-50.toml --prompt-len 3072 --bytes-per-elem 4
t moa plan show tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json --max-batch --like llama-2-7b --prompt-len 4096 --new 12 --memory 135
t moa-compile plans/smollm2-135m-moa-50.toml -o "$W/readme-out" -q
t moa-compile plans/smollm2-135m-moa-50.toml -o "$W/readme-out" --check
t moa eval --backend cpu --lengths 256 --depths 1 --ppl-rows 1 --ppl-length 256 --ppl-scored 32 --quiet
