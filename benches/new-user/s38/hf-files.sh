#!/usr/bin/env bash
# Round 24: a user's Hugging Face folder with one side file broken at a time (round 22
# covered config.json keys, dtypes, shapes and shards): tokenizer.json missing / cut /
# not JSON, tokenizer_config.json's chat template malformed, chat_template.jinja empty or
# not Jinja, generation_config.json cut or with a bad eos, the index cut, a shard cut,
# config.json empty or a list. `moa model info` and `moa generate --dense` on each.
# usage: MOA=path/to/moa BASE=<moa model random folder> hf-files.sh SCRATCH
# (the folders come from round 22's benches/new-user/s36/mkhf.py, unchanged)
set -u
MOA=${MOA:-moa}
S=$1; D=$(dirname "$0")
mkdir -p "$S"
r() { echo "[$*]"; timeout 120 "$MOA" "$@" > "$S/out" 2>&1; echo "exit $?: $(grep -vE '^\s*$' "$S/out" | grep -v '^  [0-9]*:' | tail -3 | cut -c1-400 | tr '\n' '|')"; }
mk() { rm -rf "$S/$1"; python3 "$(git -C "$D" rev-parse --show-toplevel)/benches/new-user/s36/mkhf.py" "$S/$1" "${2:-f32}" >/dev/null; }
v() { echo "== $1"; r model info "$S/$1"; r generate --model "$S/$1" --dense --prompt hi --max-new-tokens 3 --print-ids --f32; }
mk ok; v ok
mk no-tok; rm "$S/no-tok/tokenizer.json"; v no-tok
mk cut-tok; head -c 500 "$S/ok/tokenizer.json" > "$S/cut-tok/tokenizer.json"; v cut-tok
mk bad-tok; echo '{"model": 3}' > "$S/bad-tok/tokenizer.json"; v bad-tok
mk tc-cut; echo '{"chat_template": "{% for m in messages %}' > "$S/tc-cut/tokenizer_config.json"; v tc-cut
mk tc-jinja; echo '{"chat_template": "{% for m in messages %}{{ m.content }"}' > "$S/tc-jinja/tokenizer_config.json"; v tc-jinja
mk tc-num; echo '{"chat_template": 5}' > "$S/tc-num/tokenizer_config.json"; v tc-num
mk tc-list; echo '{"chat_template": [{"name": "tool_use", "template": "x"}]}' > "$S/tc-list/tokenizer_config.json"; v tc-list
mk jinja-empty; : > "$S/jinja-empty/chat_template.jinja"; v jinja-empty
mk jinja-bad; printf '{%% if %%}' > "$S/jinja-bad/chat_template.jinja"; v jinja-bad
mk gen-cut; echo '{"eos_token_id": [2,' > "$S/gen-cut/generation_config.json"; v gen-cut
mk gen-eos; echo '{"eos_token_id": 99999}' > "$S/gen-eos/generation_config.json"; v gen-eos
mk gen-str; echo '{"eos_token_id": "2"}' > "$S/gen-str/generation_config.json"; v gen-str
mk idx-cut sharded; head -c 40 "$S/idx-cut/model.safetensors.index.json" > "$S/idx-cut/t"; mv "$S/idx-cut/t" "$S/idx-cut/model.safetensors.index.json"; v idx-cut
mk shard-cut sharded; f=$(ls "$S/shard-cut"/model-0000*.safetensors | tail -1); head -c $(( $(stat -c %s "$f") - 100 )) "$f" > "$S/t"; mv "$S/t" "$f"; v shard-cut
mk single-cut; f="$S/single-cut/model.safetensors"; head -c $(( $(stat -c %s "$f") / 2 )) "$f" > "$S/t"; mv "$S/t" "$f"; v single-cut
mk cfg-empty; : > "$S/cfg-empty/config.json"; v cfg-empty
mk cfg-list; echo '[1, 2]' > "$S/cfg-list/config.json"; v cfg-list
mk cfg-bom; printf '\xef\xbb\xbf' | cat - "$S/ok/config.json" > "$S/cfg-bom/config.json"; v cfg-bom
mk cfg-crlf; sed 's/$/\r/' "$S/ok/config.json" > "$S/cfg-crlf/config.json"; v cfg-crlf
