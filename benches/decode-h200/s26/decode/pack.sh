#!/bin/bash
# Fills the carry folder of session 26's decode call (here): attention_bench and cuda_check
# gzipped, the cubins as cubins.tar.xz and the probe build's as cubins-probe.tar.xz
# (build-cubins.sh OUT makes OUT and OUT-probe), and the call's script.
# Usage: pack.sh CARRY_DIR CUBIN_DIR CALL_SCRIPT [BIN_DIR (default target/release/examples)]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
carry=$1; cubins=$2; script=$3; bin=${4:-$repo/target/release/examples}
mkdir -p "$carry"
for b in attention_bench cuda_check; do gzip -c "$bin/$b" > "$carry/$b.gz"; done
tar -cJf "$carry/cubins.tar.xz" -C "$cubins" .
tar -cJf "$carry/cubins-probe.tar.xz" -C "$cubins-probe" .
cp "$script" "$carry/"
du -sh "$carry"
