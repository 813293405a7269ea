#!/bin/bash
# Fills the carry folder of s30-i8's call (run from the repository root after the release
# builds and the cubins): bench_prefill and cuda_check gzipped, the cubins (cubins/, tr/
# traced) as cubins.tar.xz, plans/ (benches/prefill/s17/plans.sh), the call script, s19's
# blocked.py / ab_report.py, s22's forms_report.py, s25's trace_report.py, tail_report.py.
#   cargo build --release --locked --config 'profile.release.package.moa.codegen-units=13' \
#       --example bench_prefill --example cuda_check --example cuda_cubins   (copied to BIN)
#   source /work/cuda-env.sh; C=/tmp/s30-i8-bin/cuda_cubins
#   V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
#   L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
#   $C --out /tmp/s30-i8/cubins --dtypes bf16 --prefill-variants 2x64x1owghvunctbdHQF \
#       plans/fixture-gqa.toml benches/prefill/s12/fixture-gqa-sink160.toml
#   $C --out /tmp/s30-i8/cubins --from /tmp/s29-tma/cubins --from /tmp/s28-prefill/cubins --dtypes bf16 \
#       --upstream v:32:$V --upstream l:8:$L --prefill-variants 3x64x1owghvuncafbdHQm,3x64x1owghvuncafbdHQFm
#   E="python3 benches/prefill/s30/i8/trace_patch.py"
#   $C --out /tmp/s30-i8/tr --lineinfo --edit "$E" --dtypes bf16 --upstream v:32:$V --layers-only 27 \
#       --prefill-variants 3x64x1owghvuncafbdHQm,3x64x1owghvuncafbdHQFm
#   $C --out /tmp/s30-i8/tr --lineinfo --edit "$E" --dtypes bf16 --upstream v:32:$V --layers-only 23 \
#       --prefill-variants 3x64x1owghvuncafbdHQm
#   $C --out /tmp/s30-i8/tr --lineinfo --edit "$E" --dtypes bf16 --upstream l:8:$L --layers-only 29 \
#       --prefill-variants 3x64x1owghvuncafbdHQm,3x64x1owghvuncafbdHQFm
#   NEW=/tmp/s30-i8 bash benches/prefill/s30/i8/pack.sh
set -e
D=${D:-/work/main/.dev-s30-i8}
NEW=${NEW:-/tmp/s30-i8}
BIN=${BIN:-/tmp/s30-i8-bin}
mkdir -p "$D"
D=$D bash benches/prefill/s17/plans.sh
gzip -c "$BIN/bench_prefill" > "$D/bench_prefill.gz"
gzip -c "$BIN/cuda_check" > "$D/cuda_check.gz"
cp benches/prefill/s30/i8/call*.sh benches/prefill/s30/i8/tail_report.py benches/prefill/s19/blocked.py \
    benches/prefill/s19/ab_report.py benches/prefill/s22/forms_report.py benches/prefill/s25/trace_report.py "$D/"
tar cf - -C "$NEW" cubins tr | xz -6 -T2 > "$D/cubins.tar.xz"
du -sh "$D"; ls "$D"
