#!/bin/bash
# Lead call 3 of session 16: tests/cuda_engine.rs's GPU tests (release binary of main
# ed35297: VPrepass's second launch folded into one queue_second after s16-prefill) on the
# H200, skipping the SmolLM2 test that needs the network. ≈ 30 s of command.
#   cargo test --release --no-run --test cuda_engine; gzip the binary into .dev-s16-lead2/
#   run tool: carry [".dev-s16-lead2"], command "bash benches/lead-h200/s16/engine-tests.sh"
D=$PWD/.dev-s16-lead2
gunzip -c $D/cuda_engine.gz > /tmp/cuda_engine; chmod +x /tmp/cuda_engine
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH MOA_CUDA_INCLUDE=/usr/local/cuda/include
timeout 60 /tmp/cuda_engine --test-threads 1 --skip real_smollm2 2>&1 | grep -E "^test |test result|panicked"
