#!/bin/bash
# Fills .dev-s30-i8/c2 for call2.sh (after pack.sh filled .dev-s30-i8: plans/ and the
# report scripts are read from there, the c2 folder's parent). Binaries from the commit "`F` as
# prefetch.global.L2" (built as pack.sh's header says, copied to BIN); cubins:
#   N=/tmp/s30-i8/c2; E="python3 benches/prefill/s30/i8/trace_patch.py"   (C, V, L as pack.sh)
#   $C --out $N/cubins --dtypes bf16 --prefill-variants 2x64x1owghvunctbdHQF plans/fixture-gqa.toml benches/prefill/s12/fixture-gqa-sink160.toml
#   $C --out $N/cubins --from /tmp/s30-i8/cubins --dtypes bf16 --upstream v:32:$V --upstream l:8:$L \
#       --prefill-variants 3x64x1owghvuncafbdHQm,3x64x1owghvuncafbdHQFm
#   $C --out $N/tr --lineinfo --edit "$E" --dtypes bf16 --upstream v:32:$V --layers-only 27 --prefill-variants 3x64x1owghvuncafbdHQm,3x64x1owghvuncafbdHQFm
#   $C --out $N/tr --lineinfo --edit "$E" --dtypes bf16 --upstream l:8:$L --layers-only 29 --prefill-variants 3x64x1owghvuncafbdHQm,3x64x1owghvuncafbdHQFm
#   NEW=/tmp/s30-i8/c2 bash benches/prefill/s30/i8/pack2.sh
set -e
D=${D:-/work/main/.dev-s30-i8/c2}
NEW=${NEW:-/tmp/s30-i8/c2}
BIN=${BIN:-/tmp/s30-i8-bin}
mkdir -p "$D"
gzip -c "$BIN/bench_prefill" > "$D/bench_prefill.gz"
gzip -c "$BIN/cuda_check" > "$D/cuda_check.gz"
cp benches/prefill/s30/i8/call2.sh "$D/"
tar cf - -C "$NEW" cubins tr | xz -6 -T2 > "$D/cubins.tar.xz"
du -sh "$D"; ls "$D"
