#!/bin/bash
# examples/wgpu_products_engine's --max-binding at and past its edges (the weights split into
# parts under the limit), SmolLM2's shape on lavapipe: one row of 64 tokens, 4 new.
# Usage: max-binding.sh EXAMPLE_BINARY  (cargo build --release --example wgpu_products_engine)
B=${1:?the wgpu_products_engine binary}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-s56}
for mb in 0 1 4 1000 65536 1000000 20000000 99999999999999; do
  echo "== --max-binding $mb"
  timeout 300 "$B" --rows 1 --prompt 64 --new 4 --plan dense --max-binding $mb 2>&1 | tail -4 | cut -c1-400
done
