#!/bin/bash
# Session 21, lead call 3 (one H200): `j` the MHA decode default (b1793c0), end to end.
#   bash .dev-s21-engine/engine-mha.sh   (run tool timeout_s 150; carry [".dev-s21-engine"]:
#   the release tests/cuda_engine.rs binary and cuda_check, gzipped, and Vicuna-7B's
#   cubins from examples/cuda_cubins)
# 1. tests/cuda_engine.rs (--skip real_smollm2), with the new
#    mha_bf16_decode_over_split_segments_matches_the_cpu_reference_on_a_gpu (an MHA model in
#    bf16, 64-slot chunks: every segment past 64 slots split and merged by `j`).
# 2. cuda_check on the upstream Vicuna-7B plan with the defaults (4x3eiclmsj), bf16 and f16.
# PREDICTIONS: 1. 14 passed (13 + the new one). 2. bf16 2.075e-3, f16 4.128e-4 (the
#   explicit-variant runs of s21-decode).
D=$(cd "$(dirname "$0")" && pwd); ROOT=$PWD; R=/tmp/s21engine; rm -rf "$R"; mkdir -p "$R"
s=$(date +%s)
el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
save() { tar czf "$OUT/engine.tgz" -C "$R" .; }
[ -e /work/main ] || { mkdir -p /work && ln -s "$ROOT" /work/main; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
mkdir -p /tmp/cubins && tar xJf "$D/cubins.tar.xz" -C /tmp/cubins
for b in cuda_engine cuda_check; do gunzip -c "$D/$b.gz" > "/tmp/$b" && chmod +x "/tmp/$b"; done
el start
( cd "$ROOT" && timeout 60 /tmp/cuda_engine --test-threads 1 --skip real_smollm2 > "$R/cuda_engine.txt" 2>&1; echo "rc=$?" >> "$R/cuda_engine.txt" )
el "cuda_engine"; grep -E "^test result|FAILED|panicked|rc=" "$R/cuda_engine.txt" | head -5; save
V=tests/fixtures/upstream-plans/lmsys--vicuna-7b-v1.5-16k/moa_alpha_beta.json
( cd "$ROOT" && MOA_CUBIN_DIR=/tmp/cubins timeout 70 /tmp/cuda_check --upstream $V --kv-heads 32 --dtypes bf16,f16 > "$R/check_vicuna.txt" 2>&1; echo "rc=$?" >> "$R/check_vicuna.txt" )
el "cuda_check"; tail -4 "$R/check_vicuna.txt"; save
