#!/bin/bash
# README's quick commands as written, from the clone's root ("/tmp/s34-user clone"),
# with the binaries of this branch on PATH (BIN, default /tmp/s34-bin).
export PATH="${BIN:-/tmp/s34-bin}:$PATH"
t() { echo "### $*"; local s=$(date +%s.%N); "$@" 2>&1 | tail -n 12; echo "exit ${PIPESTATUS[0]} ($(echo "$(date +%s.%N) - $s" | bc | cut -c1-5) s)"; }
t moa model fetch
t moa model info
t moa plan show plans/smollm2-135m-moa-50.toml --prompt-len 3072
t moa plan show plans/smollm2-135m-moa-50.toml --prompt-len 3072 --max-batch --like smollm2-135m --memory 80GB
t moa-compile plans/smollm2-135m-moa-50.toml -o /tmp/s34w/readme-out
t moa-compile plans/smollm2-135m-moa-50.toml -o /tmp/s34w/readme-out --check
t moa plan export plans/fixture-gqa.toml -o /tmp/s34w/gqa.json
t moa plan import /tmp/s34w/gqa.json --layers 3 --heads 8 --kv-heads 2 --head-dim 64 --max-context 1024
t moa eval --backend cpu --plan plans/smollm2-135m-moa-50.toml --lengths 256 --depths 2 --ppl-rows 1 --ppl-length 256 --ppl-scored 64 --quiet
