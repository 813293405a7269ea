#!/bin/bash
# The quick probes of round 42 (session 56) that behaved: moa bench without a GPU and its
# flag refusals, moa-compile's WGSL prefill flags at and past their edges, moa plan import's
# shape flags at their edges, a plan TOML's nan/inf/huge values, an odd-shaped random model
# (hidden 68, K not a multiple of 8) and a 300 000-token vocabulary (1.2 GB of f16
# embedding, texture parts) through moa generate on lavapipe.
# Usage (from the repository root): misc.sh BIN_DIR WORK
BIN=${1:?bin}; W=${2:?work}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-s56} PATH="$BIN:$PATH"
mkdir -p "$W"
P=plans/smollm2-135m-moa-50.toml
UP=tests/fixtures/upstream-plans/meta-llama--Llama-3.2-1B-Instruct/moa_alpha_beta.json
echo "== moa bench (no CUDA driver here)"
moa bench > /dev/null 2>&1; echo "rc=$?"
for a in "--prompt 999999" "--prompt 0" "--batch 0" "--new 0" "--prefill-chunk 0" "--kv-heads 4" \
         "--like foo" "--max-batch 0" "--dtype f8" "--batch abc" "--parity 0" "--wgpu"; do
  echo "moa bench $a: $(moa bench $a 2>&1 | tail -1)"
done
echo "== moa-compile --wgsl-prefill-q-tile"
for q in 0 1 3 7 31 33 64 100 128 255 256 257 99999999999 -1 abc; do
  out=$(moa-compile -q $P -o "$W/c" --target wgsl --wgsl-prefill-q-tile $q 2>&1); rc=$?
  echo "q=$q rc=$rc $(echo "$out" | head -1)"
done
for a in "--dtype bf16" "--dtype bf16 --target wgsl" "--dtype bf16 --target cuda" \
         "--target cuda --wgsl-prefill-q-tile 128" "--target cuda --wgsl-prefill-key-pairs" \
         "--dtype f32 --target wgsl --wgsl-prefill-q-tile 256 --wgsl-prefill-key-pairs"; do
  rm -rf "$W/c"; out=$(moa-compile -q $P -o "$W/c" $a 2>&1); rc=$?
  echo "moa-compile $a: rc=$rc $(echo "$out" | tail -1)"
done
echo "== moa plan import: shape flags"
for a in "--kv-heads 8 --head-dim 0" "--kv-heads 8 --head-dim 3" "--kv-heads 8 --head-dim 1024" \
         "--kv-heads 0 --head-dim 64" "--kv-heads 5 --head-dim 64" "--kv-heads 64 --head-dim 64" \
         "--kv-heads 8 --head-dim 64 --max-context 0" "--kv-heads 8 --head-dim 64 --max-context 4294967295" \
         "--kv-heads 8 --head-dim 64 --max-context 1024" \
         "--kv-heads 8 --head-dim 64 --max-context 8192 --max-new-tokens 8192"; do
  out=$(moa plan import $UP --layers 16 --heads 32 $a 2>&1 >/dev/null); rc=$?
  echo "$a: rc=$rc $(echo "$out" | tail -1)"
done
echo "== a plan TOML's values"
for e in 's/beta = \[0.5, 0.5, 0.0/beta = [nan, 0.5, 0.0/' 's/beta = \[0.5, 0.5, 0.0/beta = [inf, 0.5, 0.0/' \
         's/alpha = \[0, 0, 64/alpha = [nan, 0, 64/' 's/alpha = \[0, 0, 64/alpha = [99999999999999999999, 0, 64/' \
         's/^layers = 3/layers = 4/' 's/^head_dim = 64/head_dim = -64/' 's/^sink_tokens = 16/sink_tokens = 16.5/' \
         's/^format_version = 1/format_version = 2/' 's/^block_tokens = 16/block_tokens = 0/' 's/^mode = "moa"/mode = "MOA"/'; do
  sed "$e" plans/fixture-gqa.toml > "$W/bad.toml"
  echo "$e: $(moa plan show "$W/bad.toml" --prompt-len 100 2>&1 | tail -1)"
done
echo "== odd shapes through moa generate"
[ -d "$W/odd" ] || moa model random --like smollm2-135m --layers 2 --hidden 68 --heads 1 --kv-heads 1 --intermediate 100 --vocab 300 --context 512 -o "$W/odd" > /dev/null
moa generate --model "$W/odd" --dense --raw --prompt hello --max-new-tokens 5 2>&1 | grep -v "^moa: building" | cut -c1-400
[ -d "$W/bigvocab" ] || moa model random --like llama-3.2-1b --layers 1 --vocab 300000 --intermediate 2048 --context 2048 --dtype f16 -o "$W/bigvocab" > /dev/null
/usr/bin/time -f "%e s, max RSS %M KB" moa generate --model "$W/bigvocab" --dense --raw --prompt "hello world" --max-new-tokens 4 --print-ids 2>&1 | grep -v "^moa: building" | cut -c1-400
