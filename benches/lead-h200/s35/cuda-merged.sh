#!/bin/bash
# Session 35, lead call 4 (one H200, CUDA): merged main after s35-wide (GQA groups past 8 as
# sub-groups of <= 8): the CUDA engine's step over sub-grouped work lists had never run on a GPU.
#   carry [".dev-lead35d"] (ce.gz = tests/cuda_engine.rs's test binary, cuda_check.gz, this script);
#   run tool: "bash .dev-lead35d/cuda-merged.sh", timeout_s 200
# Runs: the engine tests (greedy tokens against the CPU reference): the new wide-group test
# (groups of 9 and 16, bf16, default and 64-slot chunks, dense and a wrapping plan), the MHA
# split-segment one, the cluster / PDL one, the plain greedy one; then cuda_check on the GQA and
# MHA fixtures and the group-16 plan, f16 and bf16.
# PREDICTED: all pass (s35-wide's cuda_check passes on the wide plans; the engine's lists use
# the same CacheLayout::sub_grouped).
D=$(cd "$(dirname "$0")" && pwd); R=${OUT:-/tmp}/cuda-merged; mkdir -p "$R"
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
for b in ce cuda_check; do gunzip -c "$D/$b.gz" > /tmp/$b && chmod +x /tmp/$b; done
s=$(date +%s); el() { echo "[t=$(( $(date +%s) - s ))s] $*" | tee -a "$R/times.txt"; }
timeout 120 /tmp/ce --test-threads 1 wide_gqa mha_bf16 decode_in_clusters engine_greedy > "$R/engine-tests.txt" 2>&1; el "engine tests rc=$?"
grep -E "^test |test result" "$R/engine-tests.txt"
timeout 60 /tmp/cuda_check plans/fixture-gqa.toml plans/fixture-mha.toml benches/lead-h200/s34/plans/wide-gqa16.toml --dtypes f16,bf16 > "$R/cuda_check.txt" 2>&1; el "cuda_check rc=$?"
tail -8 "$R/cuda_check.txt"
