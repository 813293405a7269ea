#!/bin/bash
# (session 12's pack.sh, as session 13 used it) Fills the carry folder of a device call (here, on the 2-core machine): the release
# binaries gzipped, the cubins (MOA_CUBIN_DIR) as cubins.tar.xz, spans.json (written by
# attention_bench --spans ... --dry-run-blocks 264), the peers and table scripts and the
# call's script.  Usage: pack.sh CARRY_DIR CUBIN_DIR CALL_SCRIPT [EXTRA_BINARY...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$here")")")
carry=$1; cubins=$2; script=$3; shift 3
mkdir -p "$carry"
for b in attention_bench cuda_check; do gzip -c "$repo/target/release/examples/$b" > "$carry/$b.gz"; done
for b in "$@"; do gzip -c "$b" > "$carry/$(basename "$b" | sed 's/-[0-9a-f]*$//').gz"; done
tar -cJf "$carry/cubins.tar.xz" -C "$cubins" .
# tables.py is session 15's, unchanged (one copy kept).
cp "$repo/benches/peers/decode_peers.py" "$(dirname "$here")/s15/tables.py" "$script" "$carry/"
du -sh "$carry"
