#!/bin/bash
# Session 61: a row longer than one prefill pass on lavapipe (128 MiB bindings: 16 384 tokens of
# the Llama-3.2-1B shape a pass, refused before this session) runs alone with its activations in
# parts. A random 1-layer 1B-shape Q4_K_M file stating a 32k context, a 18 052-token prompt.
set -e
cargo build --release --locked --bin moa --example random_gguf
target/release/examples/random_gguf /tmp/l1b-1layer.gguf --like llama-3.2-1b --mix q4_k_m --layers 1 --context 32768
python3 -c "
import random
random.seed(1)
w=['the','cat','sat','on','a','mat','and','then','went','home','while','dog','ran','far','away']
open('/tmp/p17k.txt','w').write(' '.join(random.choice(w) for _ in range(4300)))"
/usr/bin/time -v target/release/moa generate --model /tmp/l1b-1layer.gguf --dense --raw \
  --prompt-file /tmp/p17k.txt --max-new-tokens 4 --ignore-eos --print-ids
