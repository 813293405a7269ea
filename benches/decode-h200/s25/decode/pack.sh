#!/bin/bash
# Fills the carry folder of session 25's decode call (here): attention_bench and cuda_check
# gzipped, the cubins as cubins.tar.xz, the peers script, both models' spans (session 17's
# spans.json) and the call's script.
# Usage: pack.sh CARRY_DIR CUBIN_DIR CALL_SCRIPT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
carry=$1; cubins=$2; script=$3
mkdir -p "$carry"
for b in attention_bench cuda_check; do gzip -c "$repo/target/release/examples/$b" > "$carry/$b.gz"; done
tar -cJf "$carry/cubins.tar.xz" -C "$cubins" .
cp "$repo/benches/peers/decode_peers.py" "$repo/benches/decode-h200/s17/spans.json" "$script" "$carry/"
du -sh "$carry"
