#!/bin/bash
# Each finding of round 42 (session 56) as one command, run with BIN's binaries (main's
# for the *-before log, the branch's for the other). Usage: findings.sh BIN_DIR WORK
# (run from the repository root; WORK: a scratch folder; it gets a tiny 256-context model, kernels folders and plans).
BIN=${1:?bin}; W=${2:?work}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-s56} PATH="$BIN:$PATH"
REPO=$PWD  # run from the repository root
UP=$REPO/tests/fixtures/upstream-plans/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json
P=$REPO/plans/smollm2-135m-moa-50.toml
mkdir -p "$W"
S="--layers 16 --heads 32 --kv-heads 8 --head-dim 64 --max-context 8192"
say() { echo; echo "== $*"; }

say "1. an upstream plan written as a JSON list [alphas, betas]"
python3 -c "import json; d=json.load(open('$UP')); json.dump([d['alphas'], d['betas']], open('$W/list.json','w'))"
moa plan import "$W/list.json" $S > /dev/null; echo "rc=$?"

say "2. Python's bare NaN in an upstream plan (json.dump of float('nan'))"
python3 -c "import json; d=json.load(open('$UP')); d['alphas'][2][1]=float('nan'); json.dump(d, open('$W/nan.json','w'))"
moa plan import "$W/nan.json" $S > /dev/null; echo "rc=$?"

say "3. an f32 --target wgsl kernels folder with one edited file: the rewrite suggested"
rm -rf "$W/k32"; moa-compile -q "$P" -o "$W/k32" --target wgsl --dtype f32 --wgsl-prefill-q-tile 128
echo "// edited" >> "$W/k32/wgsl/l03_decode.wgsl"
moa generate --f32 --plan "$P" --kernels "$W/k32" --prompt hi --max-new-tokens 2 2>&1 | tail -1
echo "-- the same folder, a run in f16:"
moa generate --plan "$P" --kernels "$W/k32" --prompt hi --max-new-tokens 2 2>&1 | tail -1
cmd=$(moa generate --f32 --plan "$P" --kernels "$W/k32" --prompt hi --max-new-tokens 2 2>&1 | tail -1 | sed 's/.*re-run `\(.*\)`$/\1/')
echo "following it: $cmd"; eval "$cmd -q"
echo "-- then the same --f32 run:"
moa generate --f32 --plan "$P" --kernels "$W/k32" --prompt "What is 2+2?" --max-new-tokens 12 2>&1 | grep -v '^moa:' | tail -2

say "4. ./scripts/main.sh's generate step with a question starting with '-'"
moa generate --prompt "-5 plus 3?" --max-new-tokens 8 2>&1 | grep -v '^moa:' | head -3

say "5. moa eval of a model with a 256-token context at its defaults (CPU reference)"
[ -d "$W/ctx256" ] || moa model random --like smollm2-135m --layers 2 --hidden 64 --heads 2 --kv-heads 1 --intermediate 64 --vocab 300 --context 256 -o "$W/ctx256" > /dev/null
moa eval --model "$W/ctx256" --backend cpu --lengths 256 --depths 1 --ppl-rows 1 --tasks passkey --no-uniform 2>&1 | grep -v '^\[' | tail -4

say "6. MOA_WGPU_TEXTURE_WEIGHTS=1 with --f32"
MOA_WGPU_TEXTURE_WEIGHTS=1 moa generate --f32 --model "$W/ctx256" --dense --raw --prompt hi --max-new-tokens 1 2>&1 | grep -o 'decode products: [^;]*\(; MOA_WGPU_TEXTURE[^;]*\)\?'
