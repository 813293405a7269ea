#!/usr/bin/env bash
# Round 22: tiny Hugging Face folders (mkhf.py) with config.json, dtype and shard variants:
# `moa model info` and `moa generate` (greedy, 8 tokens, lavapipe) on each. Every loadable
# variant is the same model, so it must print the same ids as `hf f32`; every other one
# must be refused naming the file and the tensor or key.
# usage: MOA=path/to/moa BASE=<moa model random folder> hf-variants.sh WORKDIR
set -u
MOA=${MOA:-moa}
cd "$1"
for v in f32 f16 bf16 untied tied-with-lmhead sharded no-tie-key torch-dtype-f16 rope-llama3 \
    rope-linear rope-yarn sharded-missing shard-notindexed wrong-shape wrong-dtype nan-weight dup-tensor; do
    rm -rf "hf $v"
    python3 "$(dirname "$0")/mkhf.py" "hf $v" "$v"
    echo "== $v"
    "$MOA" model info "hf $v" > info.out 2>&1
    echo "info exit $?: $(grep -E 'tied_embedding|rope|tensor_types|weights|unreadable|Cause' info.out | tr '\n' '|')"
    for f32 in "" --f32; do
        "$MOA" generate --model "hf $v" --prompt "hello world" --max-new-tokens 8 --raw \
            --print-ids --dense $f32 > gen.out 2>&1
        echo "generate $f32 exit $?: $(grep -E 'generated|Cause|rror|panick' gen.out | tr '\n' '|')"
    done
done
