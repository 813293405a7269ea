#!/bin/bash
# The carry folder's plans/ (session 16's recipe: the fixtures and both upstream plans).
set -e
D=${D:-/work/main/.dev-s17-prefill}
mkdir -p $D/plans
cp plans/fixture-{mha,gqa}.toml benches/prefill/s12/fixture-gqa-sink160.toml $D/plans/
cp tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json $D/plans/vicuna7b.json
cp tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json $D/plans/llama3_8b.json
