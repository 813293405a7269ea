#!/bin/bash
# Fills the carry folder of benches/engine-h200/s36/wide/call1.sh (branch s36-wide, session 36):
# the release moa and cuda_check of this branch (gzipped; from BIN: copy them out of the shared
# target right after the build, other worktrees build into it), the cubins of every kernel the
# call loads (MOA_CUBIN_DIR, built here with cuda_cubins: NVRTC on the device costs ~20-30 s a
# 32-layer plan), hf_decode.py and the hd-256 wide plan of this branch, and the call script.
#   CARGO_TARGET_DIR=/work/main/target cargo build --release --bin moa --example cuda_check --example cuda_cubins
#   source /work/cuda-env.sh; L8=tests/fixtures/upstream-plans/gradientai--Llama-3-8B-Instruct-262k/moa_alpha_beta.json
#   cuda_cubins --out CUB --dtypes f32 benches/lead-h200/s34/plans/wide-gqa1{6,32}.toml PLAN256 (+ --dtypes f16,bf16 PLAN256)
#   cuda_cubins --out CUB --dtypes bf16 --upstream l:2:$L8 --upstream l:1:$L8 --dense-full --ops
#   cuda_cubins --out CUB --dtypes f32 --upstream l:2:$L8 --upstream l:1:$L8
#   BIN=/tmp/s36-wide-bin CUB=/tmp/s36-wide-cub bash benches/engine-h200/s36/wide/pack.sh /work/main/.dev-s36-wide
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$(dirname "$(dirname "$here")")")")
carry=${1:-/work/main/.dev-s36-wide}
bin=${BIN:-${CARGO_TARGET_DIR:-$repo/target}/release}
mkdir -p "$carry"
# Stripped: the checkout's tracked files are ~46 MB of the call's 64 MiB.
for b in moa cuda_check; do
  strip -o "$carry/$b" "$bin/$b" && gzip -9 -f "$carry/$b"
done
# xz: the layers' cubins differ little (208 cubins: 11 MB gzipped, 0.7 MB xz).
rm -f "$carry/cub.tgz"; tar cf - -C "$CUB" . | xz -9 > "$carry/cub.txz"
cp "$repo/benches/peers/hf_decode.py" "$repo/benches/decode-h200/s36/wide/plans/wide-gqa64-hd256.toml" "$here/call1.sh" "$carry/"
du -sh "$carry"
