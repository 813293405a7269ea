#!/bin/bash
# `moa plan` subcommands with odd inputs. P: plans/smollm2-135m-moa-50.toml, G:
# plans/fixture-gqa.toml of the checkout; BIN: the binaries. Run from a scratch folder.
B=${BIN:-/tmp/s34-bin}/moa
P=${P:?set P to plans/smollm2-135m-moa-50.toml}; G=${G:?set G to plans/fixture-gqa.toml}
t() { echo "### moa $*"; timeout 20 "$B" "$@" > o.txt 2> e.txt; rc=$?; echo "exit $rc; $(head -c 400 e.txt | tr '\n' ' ')"; head -c 200 o.txt | tr '\n' ' '; echo; }
U=(--layers 1 --heads 1 --kv-heads 1 --head-dim 64)
t plan show "$P" --prompt-len 0
t plan show "$P" --prompt-len 4294967295
t plan show "$P" --prompt-len 18446744073709551615
t plan show "$P" --prompt-len 100 --bytes-per-elem 0
t plan show "$P" --prompt-len 100 --bytes-per-elem 3
t plan show "$P" --prompt-len 100 --bytes-per-elem 1000000
t plan show "$P" --prompt-len 100 --max-batch --like smollm2-135m --memory 0
t plan show "$P" --prompt-len 100 --max-batch --like smollm2-135m --memory 1e99
t plan show "$P" --prompt-len 100 --max-batch --like smollm2-135m --memory -5GB
t plan show "$P" --prompt-len 100 --max-batch --like smollm2-135m --memory 5XB
t plan show "$P" --prompt-len 100 --max-batch --like smollm2-135m --memory 80GiB --new 0
t plan show "$P" --prompt-len 100 --max-batch --like smollm2-135m --memory 80GiB --prefill-chunk 0
t plan show "$P" --prompt-len 100 --max-batch --like llama-3-8b --memory 80GiB
t plan show "$P" --prompt-len 100 --max-batch --like smollm2-135m --memory 80GiB --dtype f8
t plan show "$P" --prompt-len 100 --new 5
t plan show "$P" --prompt-len 100 --memory 80GiB
t plan export "$P" -o /proc/x.json
t plan export "$P" -o "$P"
t plan export "$G"
t plan import /dev/null "${U[@]}" --max-context 1000
t plan import - "${U[@]}" --max-context 1000 < /dev/null
echo '{"alphas": [[1]], "betas": [[0.5]]}' > up1.json
for c in 0 100 127 128 1024 1025; do t plan import up1.json "${U[@]}" --max-context $c; done
t plan import up1.json "${U[@]}" --max-context 200 --max-new-tokens 200
t plan import up1.json "${U[@]}" --max-context 200 --max-new-tokens 199
t plan import up1.json --layers 1 --heads 1 --kv-heads 1 --head-dim 0 --max-context 200
t plan import up1.json --layers 1 --heads 1 --kv-heads 2 --head-dim 64 --max-context 200
t plan import up1.json "${U[@]}" --max-context 200 --name "$(printf 'a\nb\033[31m')"
echo '{"alphas": [[1e400]], "betas": [[0.5]]}' > up2.json; t plan import up2.json "${U[@]}" --max-context 200
echo '{"alphas": [[1]], "betas": [[0.5]], "extra": 1}' > up3.json; t plan import up3.json "${U[@]}" --max-context 200
printf '{"alphas": [[1]], "betas": [[0.5]]}{"x":1}' > up4.json; t plan import up4.json "${U[@]}" --max-context 200
t plan import up1.json "${U[@]}" --max-context 200 -o .
t plan import up1.json --model "$(dirname "$G")" --layers 1
