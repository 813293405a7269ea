#!/bin/bash
# Fills the carry folder of benches/decode-h200/s36/mqa/mqa.sh (branch s36-mqa, session 36): the
# release cuda_check and attention_bench of this branch (gzipped; from BIN: copy them out of the
# shared target right after the build, other worktrees build into it), the cubins built here
# (cuda_cubins, sm_90a: the wide plans with P and A, Llama-3-8B with 2 KV heads (P) and 1 (P, A) on
# every layer, and the benchmark's layers 0,8,16,24,31 with 4x3eqmskv, P and A plus --dense) and
# the call script. The device receives the session's checkout, so the folder lives there.
#   CARGO_TARGET_DIR=/work/main/target cargo build --release --example cuda_cubins --example cuda_check --example attention_bench
#   BIN=/tmp/s36-mqa-bin CUB=/tmp/s36-mqa-cub bash benches/decode-h200/s36/mqa/pack.sh /work/main/.dev-s36-mqa
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
carry=${1:?carry folder}
bin=${BIN:?folder of the release examples}
mkdir -p "$carry"
for b in cuda_check attention_bench; do gzip -c "$bin/$b" > "$carry/$b.gz"; done
tar -czf "$carry/cubins.tar.gz" -C "${CUB:?cubin folder}" .
cp "$here"/*.sh "$carry/"
du -sh "$carry"
