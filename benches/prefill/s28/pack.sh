#!/bin/bash
# Fills the carry folder of s28-prefill's call (run from the repository root after the
# release builds and the cubins): bench_prefill and cuda_check gzipped, the cubins (cubins/,
# tr/ traced) as cubins.tar.xz, plans/ (benches/prefill/s17/plans.sh), the call script,
# s19's blocked.py / ab_report.py.
#   cargo build --release --locked --config 'profile.release.package.moa.codegen-units=13' \
#       --example bench_prefill --example cuda_check --example cuda_cubins   (then copied to BIN, below)
#   source /work/cuda-env.sh; export MOA_CUDA_CACHE=/work/cuda-cache
#   C=/tmp/s28-prefill-bin/cuda_cubins
#   V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
#   L=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
#   $C --out /tmp/s28-prefill/cubins --dtypes bf16 --upstream v:32:$V --upstream l:8:$L \
#       --prefill-variants 3x64x1owghvuncafbdHQm,3x64x1owghvuncafbdHQNm
#   $C --out /tmp/s28-prefill/cubins --dtypes bf16 --prefill-variants 2x64x1owghvunctbdHQN \
#       plans/fixture-gqa.toml benches/prefill/s12/fixture-gqa-sink160.toml
#   $C --out /tmp/s28-prefill/tr --lineinfo --edit "python3 benches/prefill/s28/trace_patch.py" --dtypes bf16 \
#       --upstream v:32:$V --layers-only 27 --prefill-variants 3x64x1owghvuncafbdHQm,3x64x1owghvuncafbdHQNm
#   NEW=/tmp/s28-prefill bash benches/prefill/s28/pack.sh
# (`N` was removed after the call: run this at 9fa0112.)
set -e
D=${D:-/work/main/.dev-s28-prefill}
NEW=${NEW:-/tmp/s28-prefill}
# BIN: this branch's binaries (the shared target's examples/<name> is the last builder's:
# build with --config 'profile.release.package.moa.codegen-units=13' and copy the newest
# examples/<name>-<hash> to /tmp/s28-prefill-bin first).
BIN=${BIN:-/tmp/s28-prefill-bin}
mkdir -p "$D"
D=$D bash benches/prefill/s17/plans.sh
gzip -c "$BIN/bench_prefill" > "$D/bench_prefill.gz"
gzip -c "$BIN/cuda_check" > "$D/cuda_check.gz"
cp benches/prefill/s28/call*.sh benches/prefill/s19/blocked.py benches/prefill/s19/ab_report.py "$D/"
tar cf - -C "$NEW" $(cd "$NEW" && ls -d cubins tr 2>/dev/null) | xz -6 -T2 > "$D/cubins.tar.xz"
du -sh "$D"; ls "$D"
