#!/bin/bash
# Not yet run (device time ran out): the upstream-plan correctness check of the 4x3 decode
# kernel, every layer, f16 and bf16. Build here:
#   CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo build --examples
#   eval "$(scripts/cuda-deps.sh)"
#   cuda_cubins --out cubins --dtypes f16,bf16 --variants 4x3 \
#       --upstream v:32:vicuna-7b.json --upstream l:8:llama-3-8b.json    # optional, saves ~16 s per plan and dtype
# then copy cuda_check, cubins/ and the two plan JSONs into a carry folder and run this there.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include MOA_CUBIN_DIR=$PWD/cubins
./cuda_check --upstream llama-3-8b.json --kv-heads 8 --dtypes f16,bf16 2>&1 | tail -6
./cuda_check --upstream vicuna-7b.json --kv-heads 32 --dtypes f16,bf16 2>&1 | tail -6
